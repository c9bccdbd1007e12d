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

#[test]
fn class_values_mixing_numbers_and_words_keep_their_own_classes() {
    // Sorted as text ("10" < "2" < "unknown"); a lookup in numeric order once found
    // nothing for "unknown" and put it, silently, into class 0.
    let text = "x,y\n1,10\n2,2\n3,unknown\n4,2\n5,unknown\n";
    let ds = parse_csv(text.as_bytes(), "t", "y", Task::Classification).unwrap();
    assert_eq!(ds.classes, vec!["10", "2", "unknown"]);
    assert_eq!(ds.labels, vec![0, 1, 2, 1, 2]);
}

#[test]
fn a_column_constant_in_the_training_rows_is_scaled_by_one() {
    // x is 5 in every training row: its std is 0. Dividing by max(std, 1e-12) made a test
    // row with x = 6 into 10^12; scikit-learn's StandardScaler divides by 1 there.
    let train = "x,z,y\n5,1,0\n5,2,1\n5,3,0\n5,4,1\n";
    let mut ds = parse_csv(train.as_bytes(), "t", "y", Task::Classification).unwrap();
    let stats = ds.feature_stats();
    assert_eq!(stats[0], (5.0, 1.0));
    // z: mean 2.5, population std √1.25.
    assert!((stats[1].0 - 2.5).abs() < 1e-12 && (stats[1].1 - 1.25f64.sqrt()).abs() < 1e-12);
    let mut test = parse_csv("x,z,y\n6,2.5,0\n".as_bytes(), "t", "y", Task::Classification).unwrap();
    test.standardize(&stats);
    assert_eq!(test.row(0), &[1.0, 0.0]);
    ds.standardize(&stats);
    assert_eq!(ds.row(0)[0], 0.0);
}

#[test]
fn non_finite_cells_are_refused_where_they_are() {
    for cell in ["NaN", "inf", "-inf"] {
        let text = format!("x,y\n1,0\n{cell},1\n");
        let e = parse_csv(text.as_bytes(), "f.csv", "y", Task::Classification)
            .unwrap_err()
            .to_string();
        assert_eq!(e, format!("f.csv: line 3, column 'x': '{cell}' is not a finite number"));
    }
}
