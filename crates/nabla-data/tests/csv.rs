//! CSV tables: classification and regression, and the errors of bad files.

use nabla_data::Dataset;
use nabla_data::csv::{Task, parse_csv, read_csv};

const IRIS: &str = "\
sepal_length,sepal_width,species
5.1,3.5,setosa
7.0,3.2,versicolor
6.3, 3.3 ,virginica
4.9,3.0,setosa
";

#[test]
fn classification_maps_sorted_labels_to_indices() {
    let ds = parse_csv(IRIS.as_bytes(), "iris.csv", "species", Task::Classification).unwrap();
    assert_eq!(ds.len(), 4);
    assert_eq!(ds.sample_shape(), vec![2]);
    assert_eq!(ds.feature_names, vec!["sepal_length", "sepal_width"]);
    assert_eq!(ds.classes(), vec!["setosa", "versicolor", "virginica"]);
    assert_eq!(ds.labels, vec![0, 1, 2, 0]);
    assert_eq!(ds.get(2), (vec![6.3, 3.3], 2));
    assert_eq!(ds.targets(), None);
    assert_eq!(ds.target(0), None);
}

#[test]
fn numeric_class_labels_sort_as_numbers() {
    let text = "y,x\n10,1\n2,2\n1,3\n2,4\n";
    let ds = parse_csv(text.as_bytes(), "t", "y", Task::Classification).unwrap();
    assert_eq!(ds.classes, vec!["1", "2", "10"]);
    assert_eq!(ds.labels, vec![2, 1, 0, 1]);
}

#[test]
fn regression_keeps_the_target_and_the_middle_column_order() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("houses.csv");
    std::fs::write(&path, "rooms,price,area\n3,250.5,80\n\"4\",1e3,120\n").unwrap();
    let ds = read_csv(&path, "price", Task::Regression).unwrap();
    assert_eq!(ds.feature_names, vec!["rooms", "area"]);
    assert_eq!(ds.targets(), Some(&[250.5, 1000.0][..]));
    assert_eq!(ds.target(1), Some(1000.0));
    assert_eq!(ds.get(1), (vec![4.0, 120.0], 0));
    assert!(ds.classes().is_empty());
    let stats = ds.feature_stats();
    assert_eq!(stats[0], (3.5, 0.5));
    assert_eq!(ds.take(1).len(), 1);
}

#[test]
fn bad_tables_are_errors_naming_file_and_line() {
    let err = |text: &str, target: &str, task| {
        parse_csv(text.as_bytes(), "bad.csv", target, task)
            .unwrap_err()
            .to_string()
    };
    let e = err(IRIS, "petal", Task::Classification);
    assert!(
        e.starts_with("bad.csv: no column 'petal' (columns: sepal_length, sepal_width, species)"),
        "{e}"
    );
    let e = err("a,b\n1,2\n3,x\n", "a", Task::Regression);
    assert_eq!(e, "bad.csv: line 3, column 'b': 'x' is not a number");
    let e = err("a,b\n1,2\nfoo,4\n", "a", Task::Regression);
    assert_eq!(e, "bad.csv: line 3, column 'a': 'foo' is not a number");
    let e = err("a,b\n1,\n", "a", Task::Regression);
    assert_eq!(e, "bad.csv: line 2, column 'b': empty cell");
    let e = err("a,b\n1,2\n1,2,3\n", "a", Task::Classification);
    assert!(e.starts_with("bad.csv: line 3: 3 fields, but the header has 2"), "{e}");
    let e = err("a,b\n", "a", Task::Classification);
    assert!(e.contains("no data rows"), "{e}");
    let e = err("", "a", Task::Classification);
    assert!(e.contains("empty file"), "{e}");
    let e = read_csv(std::path::Path::new("/nonexistent/x.csv"), "a", Task::Regression)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/x.csv: "), "{e}");
}
