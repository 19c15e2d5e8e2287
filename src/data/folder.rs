//! Folder-per-class datasets (`root/<class>/*.txt`, IMDB's `aclImdb/train/{neg,pos}`), read like
//! Keras' `text_dataset_from_directory`: classes are the sorted sub-folder names.

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{DataError, Dataset, Example, LoadOptions, LoadReport, Skipped};

pub fn load(root: &Path, opts: &LoadOptions) -> Result<(Dataset, LoadReport), DataError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    let class_names = match &opts.classes {
        Some(names) => names.clone(),
        None => {
            let mut names = Vec::new();
            for entry in fs::read_dir(root).map_err(io(root))? {
                let entry = entry.map_err(io(root))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let hidden = name.starts_with('.');
                let ignored = opts.ignore_folders.iter().any(|i| i == &name);
                if entry.path().is_dir() && !hidden && !ignored {
                    names.push(name);
                }
            }
            names.sort();
            names
        }
    };
    if class_names.is_empty() {
        return Err(DataError::NoClasses { path: root.to_path_buf() });
    }
    if class_names.len() < 2 {
        return Err(DataError::TooFewClasses { path: root.to_path_buf(), found: class_names });
    }

    let mut examples = Vec::new();
    let mut report = LoadReport::default();
    for (label, class) in class_names.iter().enumerate() {
        let dir = root.join(class);
        if !dir.is_dir() {
            return Err(DataError::NotFound(dir));
        }
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(DataError::EmptyClass(dir));
        }
        files.sort();
        let read: Vec<(PathBuf, std::io::Result<Vec<u8>>)> =
            files.into_par_iter().map(|p| {
                let bytes = fs::read(&p);
                (p, bytes)
            }).collect();
        let before = examples.len();
        for (path, bytes) in read {
            let bytes = bytes.map_err(io(&path))?;
            match String::from_utf8(bytes) {
                Err(_) => report.skip(path.display().to_string(), Skipped::NotUtf8),
                Ok(text) if super::is_blank(&text) => {
                    report.skip(path.display().to_string(), Skipped::EmptyText)
                }
                Ok(text) => examples.push(Example::single(text, label)),
            }
        }
        if examples.len() == before {
            return Err(DataError::ClassWithoutExamples { class: class.clone(), path: dir });
        }
    }
    Ok((Dataset { examples, class_names, source: root.to_path_buf(), multi_label: false }, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, bytes: &[u8]) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }

    #[test]
    fn reads_sorted_classes_and_reports_bad_files() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "pos/1.txt", b"great");
        write(d.path(), "pos/2.txt", b"\xff\xfe broken");
        write(d.path(), "neg/1.txt", b"awful");
        write(d.path(), "neg/2.txt", b"   \n");
        write(d.path(), "unsup/1.txt", b"whatever");
        write(d.path(), "urls_pos.txt", b"not a class");
        let opts = LoadOptions { ignore_folders: vec!["unsup".into()], ..Default::default() };
        let (ds, report) = load(d.path(), &opts).unwrap();
        assert_eq!(ds.class_names, ["neg", "pos"]);
        assert_eq!(ds.examples, [Example::single("awful", 0), Example::single("great", 1)]);
        assert_eq!(report.skipped.len(), 2);
        assert!(report.skipped.iter().any(|(p, w)| p.ends_with("2.txt") && *w == Skipped::NotUtf8));
        assert!(report.skipped.iter().any(|(_, w)| *w == Skipped::EmptyText));
    }

    #[test]
    fn empty_class_folder_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "pos/1.txt", b"great");
        fs::create_dir_all(d.path().join("neg")).unwrap();
        let err = load(d.path(), &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("neg") && err.contains("holds no files"), "{err}");
    }

    #[test]
    fn a_folder_without_class_folders_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.txt", b"x");
        let err = load(d.path(), &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("no class sub-folders"), "{err}");
    }
}
