//! The collected graph as ONNX's `ModelProto`, encoded by the `onnx-protobuf` crate (the
//! messages generated from onnx.proto by rust-protobuf).

use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType,
    tensor_shape_proto, type_proto,
};

/// The decoded form of an exported file, for readers in tests and tools.
pub use onnx_protobuf::{
    Message as ProtobufMessage, ModelProto as Model, ValueInfoProto as ValueInfo, type_proto::Value as TypeValue,
};

use super::{Attr, InitData, OPSET, OnnxGraph, OnnxMetadata, OnnxValue};
use nabla_core::{Error, Result};

/// ONNX IR version 8 (ONNX 1.10–1.12), the one that goes with opset 17.
const IR_VERSION: i64 = 8;

fn attribute(name: &str, a: &Attr) -> AttributeProto {
    let mut p = AttributeProto::new();
    p.name = name.to_string();
    let kind = match a {
        Attr::Int(i) => {
            p.i = *i;
            AttributeType::INT
        }
        Attr::Ints(v) => {
            p.ints = v.clone();
            AttributeType::INTS
        }
        Attr::Float(f) => {
            p.f = *f;
            AttributeType::FLOAT
        }
        Attr::Str(s) => {
            p.s = s.as_bytes().to_vec();
            AttributeType::STRING
        }
    };
    p.type_ = kind.into();
    p
}

/// A float tensor's type with dimension 0 named `batch` and the others fixed.
fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for (i, &d) in dims.iter().enumerate() {
        let mut dim = tensor_shape_proto::Dimension::new();
        dim.value = Some(if i == 0 {
            tensor_shape_proto::dimension::Value::DimParam("batch".into())
        } else {
            tensor_shape_proto::dimension::Value::DimValue(d as i64)
        });
        shape.dim.push(dim);
    }
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = DataType::FLOAT as i32;
    tensor.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    let mut v = ValueInfoProto::new();
    v.name = name.to_string();
    v.type_ = Some(ty).into();
    v
}

/// The ONNX file of graph `g` traced from input `x` to output `y`.
pub fn model_bytes(g: &OnnxGraph, x: &OnnxValue, y: &OnnxValue, metadata: &OnnxMetadata) -> Result<Vec<u8>> {
    let mut graph = GraphProto::new();
    graph.name = "nabla".into();
    for n in &g.nodes {
        let mut p = NodeProto::new();
        p.op_type = n.op.to_string();
        p.name = n.name.clone();
        p.input = n.inputs.clone();
        p.output = vec![n.output.clone()];
        p.attribute = n.attrs.iter().map(|(k, a)| attribute(k, a)).collect();
        graph.node.push(p);
    }
    // The output always has the same name, whatever layer computes it last.
    let mut out = NodeProto::new();
    out.op_type = "Identity".into();
    out.name = "logits".into();
    out.input = vec![y.name.clone()];
    out.output = vec!["logits".into()];
    graph.node.push(out);
    for init in &g.initializers {
        let mut t = TensorProto::new();
        t.name = init.name.clone();
        t.dims = init.dims.iter().map(|&d| d as i64).collect();
        match &init.data {
            InitData::F32(v) => {
                t.data_type = DataType::FLOAT as i32;
                t.raw_data = v.iter().flat_map(|f| f.to_le_bytes()).collect();
            }
            InitData::I64(v) => {
                t.data_type = DataType::INT64 as i32;
                t.raw_data = v.iter().flat_map(|i| i.to_le_bytes()).collect();
            }
        }
        graph.initializer.push(t);
    }
    graph.input.push(value_info(&x.name, x.sample.dims()));
    graph.output.push(value_info("logits", y.sample.dims()));

    let mut model = ModelProto::new();
    model.ir_version = IR_VERSION;
    model.producer_name = "nabla".into();
    model.producer_version = env!("CARGO_PKG_VERSION").into();
    let mut opset = OperatorSetIdProto::new();
    opset.domain = String::new();
    opset.version = OPSET;
    model.opset_import.push(opset);
    model.metadata_props = metadata
        .entries
        .iter()
        .map(|(k, v)| {
            let mut e = StringStringEntryProto::new();
            e.key = k.clone();
            e.value = v.clone();
            e
        })
        .collect();
    model.graph = Some(graph).into();
    model.write_to_bytes().map_err(|e| Error::Argument {
        op: "onnx export",
        msg: format!("encoding the model: {e}"),
    })
}
