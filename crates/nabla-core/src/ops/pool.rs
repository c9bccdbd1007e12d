pub struct MaxPool2dOptions;
pub struct AvgPool2dOptions;
