//! NumPy's `.npy` format for 2-D float32 matrices: the header the batch jobs write their vectors
//! under, and the reader the GloVe wheel's `glove_6B_50d_emb.npy` goes through. Written by hand:
//! it is a ten-byte prefix and a Python dict literal, and the crates that read it bring an
//! array library with them.

use std::io::Read;
use std::path::Path;

use super::DataError;

/// The header of a C-order `<f4` array of `rows × dim`, version 1.0, padded so that the data
/// starts at a multiple of 64 bytes (numpy's `format.write_array_header_1_0`).
pub fn header(rows: u64, dim: usize) -> Vec<u8> {
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&u16::try_from(dict.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

fn bad(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::BadRecord { path: path.to_path_buf(), line: 0, reason: reason.into() }
}

/// Reads a 2-D little-endian float32 `.npy` file: `(rows, dim, values)`.
pub fn read_f32_matrix(path: &Path) -> Result<(usize, usize, Vec<f32>), DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix).map_err(io)?;
    if &prefix[..6] != b"\x93NUMPY" {
        return Err(bad(path, "not a .npy file"));
    }
    // Version 1.x stores the header length in 2 bytes, 2.x and 3.x in 4.
    let len = if prefix[6] == 1 {
        let mut b = [0u8; 2];
        file.read_exact(&mut b).map_err(io)?;
        usize::from(u16::from_le_bytes(b))
    } else {
        let mut b = [0u8; 4];
        file.read_exact(&mut b).map_err(io)?;
        u32::from_le_bytes(b) as usize
    };
    let mut dict = vec![0u8; len];
    file.read_exact(&mut dict).map_err(io)?;
    let dict = String::from_utf8_lossy(&dict);
    if !dict.contains("'descr': '<f4'") {
        return Err(bad(path, format!("expected a float32 ('<f4') array, the header says {}", dict.trim())));
    }
    // Column-major data (numpy's `fortran_order`: the GloVe wheel's matrix is one) is
    // transposed into rows.
    let fortran = dict.contains("'fortran_order': True");
    let shape = dict.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).unwrap_or("");
    let dims: Vec<usize> = shape.split(',').map(str::trim).filter(|d| !d.is_empty()).filter_map(|d| d.parse().ok()).collect();
    let [rows, dim] = dims[..] else {
        return Err(bad(path, format!("expected a 2-D array, the shape is ({shape})")));
    };
    let mut bytes = Vec::with_capacity(rows * dim * 4);
    file.read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() != rows * dim * 4 {
        return Err(bad(path, format!("{} data bytes for a {rows} x {dim} float32 array", bytes.len())));
    }
    let stored: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if !fortran {
        return Ok((rows, dim, stored));
    }
    let mut values = vec![0.0f32; stored.len()];
    for (j, column) in stored.chunks_exact(rows.max(1)).enumerate() {
        for (i, &v) in column.iter().enumerate() {
            values[i * dim + j] = v;
        }
    }
    Ok((rows, dim, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_align_the_data_and_read_back() {
        let h = header(3, 384);
        assert_eq!(h.len() % 64, 0);
        assert!(h.starts_with(b"\x93NUMPY\x01\x00"));
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.npy");
        let mut bytes = header(2, 3);
        for v in [1.0f32, 2.0, 3.0, -1.0, 0.5, 0.25] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read_f32_matrix(&p).unwrap(), (2, 3, vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.25]));
        std::fs::write(&p, &bytes[..bytes.len() - 4]).unwrap();
        assert!(read_f32_matrix(&p).unwrap_err().to_string().contains("20 data bytes for a 2 x 3"));
        // The same matrix stored column by column.
        let text = String::from_utf8_lossy(&header(2, 3)[10..]).replace("'fortran_order': False", "'fortran_order': True ");
        let mut fortran = header(2, 3)[..10].to_vec();
        fortran.extend_from_slice(text.as_bytes());
        for v in [1.0f32, -1.0, 2.0, 0.5, 3.0, 0.25] {
            fortran.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(&p, &fortran).unwrap();
        assert_eq!(read_f32_matrix(&p).unwrap(), (2, 3, vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.25]));
        std::fs::write(&p, "text").unwrap();
        assert!(read_f32_matrix(&p).is_err());
    }
}
