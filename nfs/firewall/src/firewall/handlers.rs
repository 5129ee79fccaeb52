//! The firewall's handlers: its flow table and rules, read and edited
//! while it runs (`hpio-nf ctl read fw flows`, `ctl write fw add RULE`).

use std::sync::Arc;

use hpio_nf::element::{handler, HandlerCx, HandlerResult};

use super::{edit, Firewall, Kill, Rules};

impl Firewall {
    pub(super) fn read_handler(&self, name: &str, cx: &HandlerCx) -> HandlerResult {
        match name {
            "flows" => Ok(edit::flows_answer(&self.table, cx.now())),
            "rules" => Ok(edit::rules_answer(&self.shared.rule_list)),
            _ => Err(handler::no_such_handler(name)),
        }
    }

    pub(super) fn write_handler(&mut self, name: &str, arg: &str) -> HandlerResult {
        match name {
            "kill" => {
                let killed = match edit::parse_kill(arg)? {
                    Kill::All => self.table.clear(),
                    Kill::One(t) => usize::from(self.table.kill(&t)),
                };
                Ok(serde_json::json!({ "killed": killed }))
            }
            "add" | "delete" | "replace" => {
                let e = edit::parse_edit(name, arg)?;
                let (list, hits) = edit::apply(&self.shared.rule_list, &self.hits, e)?;
                let mut shared = (*self.shared).clone();
                shared.rules = Rules::new(&list);
                shared.rule_list = list;
                self.shared = Arc::new(shared);
                self.hits = hits.into_boxed_slice();
                Ok(edit::rules_answer(&self.shared.rule_list))
            }
            _ => Err(handler::no_such_handler(name)),
        }
    }
}
