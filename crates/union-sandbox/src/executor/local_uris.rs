//! `file://` URIs in a task's inputs, as plain paths: the sandbox's storage is its own disk
//! (blobs uploaded through the data proxy have `file://` native URLs, as a cloud bucket's are
//! `s3://`), mounted into task containers at the same paths, and flytekit reads a local file
//! only by its path (`os.path.isfile`), not by a `file://` URL.

use union_idl::flyteidl::core::{literal, scalar, Literal, LiteralMap};

fn strip(uri: &mut String) {
    if let Some(path) = uri.strip_prefix("file://") {
        if path.starts_with('/') {
            *uri = path.to_string();
        }
    }
}

fn walk(l: &mut Literal) {
    match &mut l.value {
        Some(literal::Value::Scalar(s)) => match &mut s.value {
            Some(scalar::Value::Blob(b)) => strip(&mut b.uri),
            Some(scalar::Value::StructuredDataset(d)) => strip(&mut d.uri),
            Some(scalar::Value::Union(u)) => {
                if let Some(v) = u.value.as_deref_mut() {
                    walk(v)
                }
            }
            _ => {}
        },
        Some(literal::Value::Collection(c)) => c.literals.iter_mut().for_each(walk),
        Some(literal::Value::Map(m)) => m.literals.values_mut().for_each(walk),
        _ => {}
    }
}

/// `inputs` with every blob's and dataset's `file:///path` written `/path`.
pub fn as_paths(inputs: &LiteralMap) -> LiteralMap {
    let mut out = inputs.clone();
    out.literals.values_mut().for_each(walk);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use union_idl::flyteidl::core::{Blob, LiteralCollection, Scalar};

    fn blob(uri: &str) -> Literal {
        Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Blob(Blob {
                    uri: uri.into(),
                    metadata: None,
                })),
            }))),
            ..Default::default()
        }
    }

    #[test]
    fn file_urls_become_paths_and_others_stay() {
        let inputs = LiteralMap {
            literals: [(
                "fs".to_string(),
                Literal {
                    value: Some(literal::Value::Collection(LiteralCollection {
                        literals: vec![blob("file:///data/blobs/a.txt"), blob("s3://b/k")],
                    })),
                    ..Default::default()
                },
            )]
            .into(),
        };
        let Some(literal::Value::Collection(c)) = &as_paths(&inputs).literals["fs"].value else {
            panic!()
        };
        assert_eq!(c.literals[0], blob("/data/blobs/a.txt"));
        assert_eq!(c.literals[1], blob("s3://b/k"));
    }
}
