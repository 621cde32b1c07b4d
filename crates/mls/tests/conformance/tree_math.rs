//! tree-math.json: array-tree arithmetic (RFC 9420 Appendix C).

use crate::common::{Outcome, run_cases, u64_field};
use conclave_mls::internal::tree::{NodeIndex, TreeSize};
use serde_json::Value;

pub fn run(cases: &[Value]) -> Outcome {
    run_cases(cases, |case| {
        let n_leaves = u64_field(case, "n_leaves")? as u32;
        let tree = TreeSize::from_leaf_count(n_leaves).ok_or("n_leaves is not a power of two")?;
        if u64::from(tree.node_count()) != u64_field(case, "n_nodes")? {
            return Err("n_nodes".into());
        }
        if u64::from(tree.root().0) != u64_field(case, "root")? {
            return Err("root".into());
        }
        type Relation = fn(TreeSize, NodeIndex) -> Option<NodeIndex>;
        let relations: [(&str, Relation); 4] = [
            ("left", |_, x| x.left()),
            ("right", |_, x| x.right()),
            ("parent", |t, x| t.parent(x)),
            ("sibling", |t, x| t.sibling(x)),
        ];
        for (name, relation) in relations {
            let expected = case
                .get(name)
                .and_then(Value::as_array)
                .ok_or(format!("missing {name}"))?;
            if expected.len() != tree.node_count() as usize {
                return Err(format!(
                    "{name}: {} entries for {} nodes",
                    expected.len(),
                    tree.node_count()
                ));
            }
            for (i, want) in expected.iter().enumerate() {
                let got = relation(tree, NodeIndex(i as u32)).map(|n| u64::from(n.0));
                if got != want.as_u64() {
                    return Err(format!("{name}({i}): got {got:?}, want {want}"));
                }
            }
        }
        Ok(())
    })
}
