pub struct Conv2dOptions;
