//! Reads YAML the way helm and Kubernetes do, into the JSON they would send.
//!
//! helm and kubectl read manifests with sigs.k8s.io/yaml, which decodes with go-yaml **v2**
//! (YAML 1.1) and then converts to JSON. A YAML 1.2 reader disagrees on real manifests:
//! `defaultMode: 0644` is 420 to helm but 644 to YAML 1.2 (and the API server then rejects
//! it), `yes`/`on` are booleans, `1.0` reaches the server as `1`. So this module rebuilds
//! v2's reading on yaml_rust2's event parser: the tree with anchors and merge keys as v2's
//! `decode.go` builds it, scalars as `resolve.go` resolves them (see `scalar`), map keys
//! and numbers as sigs.k8s.io/yaml's `yaml.go` writes them.
//!
//! Limits are v2's (text nested deeper than 10000, excessive alias expansion), and two
//! stricter ones: a value nested deeper than 1000 levels, and (yaml_rust2's) flow collections
//! such as `[[...]]` nested deeper than 255.
//! Where v2 is non-deterministic (two keys that become the same JSON name, such as `1` and
//! `"1"`), the later one wins.

mod scalar;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::rc::Rc;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

pub(crate) use scalar::decode_base64;
use scalar::{resolve_node, to_json, to_json_key, MERGE};

/// go-yaml v2's `max_flow_level` / `max_indents`.
const MAX_DEPTH: usize = 10_000;

/// Callers keep, serialize and drop the JSON on ordinary threads (2 MiB of stack), which a
/// value 10000 levels deep would overflow; real manifests nest a few dozen levels.
const MAX_VALUE_DEPTH: usize = 1_000;

/// Dropping a 10000-level tree recursively needs more than a 2 MiB thread stack.
const READER_STACK_BYTES: usize = 64 << 20;

/// Every document of a YAML stream, as JSON; an empty document is `null`.
pub fn documents(text: &str) -> Result<Vec<Value>> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("yaml11".into())
            .stack_size(READER_STACK_BYTES)
            .spawn_scoped(scope, || read_documents(text))
            .context("cannot start the YAML reader thread")?
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the YAML reader panicked (a bug)")))
    })
}

fn read_documents(text: &str) -> Result<Vec<Value>> {
    let mut parser = Parser::new_from_str(text);
    let mut tree = TreeBuilder::default();
    let mut documents = Vec::new();
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|error| anyhow!("{}: {}", position(error.marker()), error.info()))?;
        match event {
            Event::StreamEnd => return Ok(documents),
            Event::DocumentStart => tree = TreeBuilder::default(),
            Event::DocumentEnd => {
                let root = std::mem::take(&mut tree).finish();
                documents.push(match root {
                    Some(root) => Decoder::default().value(&root)?,
                    None => Value::Null,
                });
            }
            event => tree.add(event, mark)?,
        }
    }
}

fn position(mark: &Marker) -> String {
    format!("line {} column {}", mark.line(), mark.col() + 1)
}

/// A node of one document, as v2's parser keeps it: aliases point at the anchored node.
enum Node {
    Scalar {
        value: String,
        tag: Option<String>,
        plain: bool,
    },
    Sequence(Vec<Rc<Node>>),
    Mapping(Vec<(Rc<Node>, Rc<Node>)>),
    Alias(Rc<Node>),
}

enum Open {
    Sequence(Vec<Rc<Node>>),
    Mapping(Vec<(Rc<Node>, Rc<Node>)>, Option<Rc<Node>>),
}

/// Builds one document's tree from events, without recursion, so depth costs no stack.
#[derive(Default)]
struct TreeBuilder {
    open: Vec<(Open, usize)>,
    anchors: HashMap<usize, Rc<Node>>,
    root: Option<Rc<Node>>,
}

impl TreeBuilder {
    fn add(&mut self, event: Event, mark: Marker) -> Result<()> {
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                let tag = tag.map(|tag| format!("{}{}", tag.handle, tag.suffix));
                let plain = style == TScalarStyle::Plain;
                self.close(Node::Scalar { value, tag, plain }, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.open(Open::Sequence(Vec::new()), anchor, mark)?
            }
            Event::MappingStart(anchor, _) => {
                self.open(Open::Mapping(Vec::new(), None), anchor, mark)?
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.open.pop() {
                    Some((Open::Sequence(items), anchor)) => (Node::Sequence(items), anchor),
                    Some((Open::Mapping(entries, _), anchor)) => (Node::Mapping(entries), anchor),
                    None => bail!("{}: unbalanced collection end", position(&mark)),
                };
                self.close(node, anchor);
            }
            Event::Alias(id) => {
                let target = self.anchors.get(&id).cloned();
                let Some(target) = target else {
                    if self.open.iter().any(|(_, anchor)| *anchor == id) {
                        bail!("{}: an anchor's value contains itself", position(&mark));
                    }
                    bail!("{}: unknown anchor referenced", position(&mark));
                };
                self.close(Node::Alias(target), 0);
            }
            _ => {}
        }
        Ok(())
    }

    fn open(&mut self, collection: Open, anchor: usize, mark: Marker) -> Result<()> {
        if self.open.len() >= MAX_DEPTH {
            bail!("{}: exceeded max depth of {MAX_DEPTH}", position(&mark));
        }
        self.open.push((collection, anchor));
        Ok(())
    }

    fn close(&mut self, node: Node, anchor: usize) {
        let node = Rc::new(node);
        if anchor != 0 {
            self.anchors.insert(anchor, Rc::clone(&node));
        }
        match self.open.last_mut() {
            Some((Open::Sequence(items), _)) => items.push(node),
            Some((Open::Mapping(entries, pending_key), _)) => match pending_key.take() {
                Some(key) => entries.push((key, node)),
                None => *pending_key = Some(node),
            },
            None => self.root = Some(node),
        }
    }

    fn finish(self) -> Option<Rc<Node>> {
        self.root
    }
}

/// v2's `decoder` into an `interface{}`, with its alias accounting, writing JSON directly.
#[derive(Default)]
struct Decoder {
    decodes: usize,
    alias_decodes: usize,
    alias_depth: usize,
    depth: usize,
}

impl Decoder {
    fn value(&mut self, node: &Node) -> Result<Value> {
        self.count()?;
        match node {
            Node::Scalar { value, tag, plain } => {
                to_json(resolve_node(value, tag.as_deref(), *plain)?)
            }
            Node::Alias(target) => self.through_alias(|d| d.value(target)),
            Node::Sequence(items) => self.nested(|d| {
                let values = items.iter().map(|item| d.value(item));
                values.collect::<Result<Vec<_>>>().map(Value::Array)
            }),
            Node::Mapping(entries) => self.nested(|d| {
                let mut object = Map::new();
                d.fill(entries, &mut object)?;
                Ok(Value::Object(object))
            }),
        }
    }

    /// v2's `mapping`: entries in order, a later key overwrites an earlier one, and a merge
    /// writes into the same map at the point where it appears.
    fn fill(
        &mut self,
        entries: &[(Rc<Node>, Rc<Node>)],
        object: &mut Map<String, Value>,
    ) -> Result<()> {
        for (key, value) in entries {
            if is_merge_key(key) {
                self.merge(value, object)?;
                continue;
            }
            let key = self.key(key)?;
            let value = self.value(value)?;
            object.insert(key, value);
        }
        Ok(())
    }

    fn key(&mut self, node: &Node) -> Result<String> {
        self.count()?;
        match node {
            Node::Scalar { value, tag, plain } => {
                to_json_key(resolve_node(value, tag.as_deref(), *plain)?)
            }
            Node::Alias(target) => self.through_alias(|d| d.key(target)),
            Node::Sequence(_) | Node::Mapping(_) => {
                bail!("invalid map key: a sequence or a mapping")
            }
        }
    }

    /// v2's `merge`: a map, an alias of a map, or a sequence of those, where the earlier
    /// maps of a sequence take precedence (so they are written last).
    fn merge(&mut self, node: &Node, object: &mut Map<String, Value>) -> Result<()> {
        match node {
            Node::Sequence(items) => items
                .iter()
                .rev()
                .try_for_each(|item| self.merge_one(item, object)),
            node => self.merge_one(node, object),
        }
    }

    fn merge_one(&mut self, node: &Node, object: &mut Map<String, Value>) -> Result<()> {
        self.count()?;
        match node {
            Node::Mapping(entries) => self.nested(|d| d.fill(entries, object)),
            Node::Alias(target) if matches!(**target, Node::Mapping(_)) => {
                self.through_alias(|d| d.merge_one(target, object))
            }
            _ => bail!("map merge requires map or sequence of maps as the value"),
        }
    }

    /// v2 refuses a document when aliases expand it too much (`allowedAliasRatio`).
    fn count(&mut self) -> Result<()> {
        self.decodes += 1;
        if self.alias_depth > 0 {
            self.alias_decodes += 1;
        }
        let ratio = self.alias_decodes as f64 / self.decodes as f64;
        if self.alias_decodes > 100
            && self.decodes > 1000
            && ratio > allowed_alias_ratio(self.decodes)
        {
            bail!("document contains excessive aliasing");
        }
        Ok(())
    }

    fn through_alias<T>(&mut self, decode: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.alias_depth += 1;
        let result = self.nested(decode);
        self.alias_depth -= 1;
        result
    }

    /// Counts collections, aliases and merges: aliases can nest a value deeper than the text.
    fn nested<T>(&mut self, decode: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_VALUE_DEPTH {
            bail!("nesting deeper than {MAX_VALUE_DEPTH} levels is not supported");
        }
        self.depth += 1;
        let result = decode(self);
        self.depth -= 1;
        result
    }
}

/// `allowedAliasRatio` in decode.go: 99% of decodes may come from aliases in a small
/// document, sliding down to 10% at four million decodes.
fn allowed_alias_ratio(decodes: usize) -> f64 {
    const LOW: f64 = 400_000.0;
    const HIGH: f64 = 4_000_000.0;
    let decodes = decodes as f64;
    if decodes <= LOW {
        0.99
    } else if decodes >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decodes - LOW) / (HIGH - LOW))
    }
}

/// `isMerge` in decode.go: a plain `<<` (or one tagged `!` or `!!merge`).
fn is_merge_key(node: &Node) -> bool {
    match node {
        Node::Scalar { value, tag, plain } => {
            value == "<<"
                && match tag.as_deref() {
                    None => *plain,
                    Some(tag) => tag == "!" || tag == MERGE,
                }
        }
        _ => false,
    }
}
