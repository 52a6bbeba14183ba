//! The sandbox every template runs in: no loader, a fuel budget, a recursion limit, output
//! capped per part, and the built-in template when a practice's fails.

use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::{
    FUEL, Locale, MAX_SOURCE_BYTES, Part, RECURSION_LIMIT, TemplateError, TemplateKey,
    cached_default, output_limit, parts,
};
use crate::notification::{Channel, Kind};

fn environment(part: Part, undefined: UndefinedBehavior) -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_undefined_behavior(undefined);
    env.set_auto_escape_callback(move |_| match part {
        Part::Html => AutoEscape::Html,
        Part::Subject | Part::Text => AutoEscape::None,
    });
    env
}

/// A writer that refuses to grow past its limit, which stops the rendering.
struct Capped {
    out: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn run(
    source: &str,
    channel: Channel,
    part: Part,
    context: &Value,
    undefined: UndefinedBehavior,
) -> Result<String, TemplateError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(TemplateError {
            line: None,
            reason: format!(
                "the template is {} bytes long; the limit is {MAX_SOURCE_BYTES}",
                source.len()
            ),
        });
    }
    let env = environment(part, undefined);
    let template = env.template_from_str(source).map_err(describe)?;
    render_capped(&template, channel, part, context)
}

/// Renders a compiled template, stopping it at the part's output limit.
fn render_capped(
    template: &minijinja::Template<'_, '_>,
    channel: Channel,
    part: Part,
    context: &Value,
) -> Result<String, TemplateError> {
    let limit = output_limit(channel, part);
    let mut capped = Capped {
        out: Vec::new(),
        limit,
        exceeded: false,
    };
    let outcome = template.render_captured_to(context.clone(), &mut capped);
    if capped.exceeded {
        return Err(TemplateError {
            line: None,
            reason: format!(
                "the {part} would be longer than {limit} bytes",
                part = part.as_str()
            ),
        });
    }
    outcome.map_err(describe)?;
    String::from_utf8(capped.out).map_err(|_| TemplateError {
        line: None,
        reason: "the output is not UTF-8".into(),
    })
}

/// Renders a built-in template, compiled once per process: every message that has no practice
/// template goes through here, and compiling is most of the cost of a rendering.
pub(super) fn run_default(key: TemplateKey, context: &Value) -> Result<String, TemplateError> {
    static COMPILED: OnceLock<HashMap<TemplateKey, Environment<'static>>> = OnceLock::new();
    let compiled = COMPILED.get_or_init(|| {
        let mut map = HashMap::new();
        for &kind in Kind::ALL {
            for &channel in Channel::ALL {
                for &locale in Locale::ALL {
                    for &part in parts(channel) {
                        let key = TemplateKey {
                            kind,
                            channel,
                            locale,
                            part,
                        };
                        let Some(source) = cached_default(key) else {
                            continue;
                        };
                        let mut env = environment(part, UndefinedBehavior::Lenient);
                        // A built-in template that does not compile is caught by the tests;
                        // here it would fall back to the practice name (see `render_with`).
                        if env.add_template("built-in", source).is_ok() {
                            map.insert(key, env);
                        }
                    }
                }
            }
        }
        map
    });
    let template = compiled
        .get(&key)
        .and_then(|env| env.get_template("built-in").ok())
        .ok_or_else(|| TemplateError {
            line: None,
            reason: "no built-in template".into(),
        })?;
    render_capped(&template, key.channel, key.part, context)
}

fn describe(error: minijinja::Error) -> TemplateError {
    use minijinja::ErrorKind;
    let reason = match error.kind() {
        ErrorKind::OutOfFuel => {
            "the template runs too long (a loop too large?) and was stopped".to_string()
        }
        ErrorKind::UndefinedError => format!(
            "{}: this variable does not exist here (see the list of variables; in SMS and push \
             there is no `instructions`, no document title, and `motive` only when the practice \
             shows motives)",
            error.detail().unwrap_or("undefined value")
        ),
        _ if error.to_string().contains("template") && error.kind() != ErrorKind::SyntaxError => {
            format!(
                "{}: templates cannot include, import or extend other templates",
                error.detail().unwrap_or_default()
            )
        }
        _ => match error.detail() {
            Some(detail) => format!("{}: {detail}", error.kind()),
            None => error.kind().to_string(),
        },
    };
    TemplateError {
        line: error.line(),
        reason,
    }
}
