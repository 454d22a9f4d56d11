//! `head: prompt`: a decoder classifies by what it would say next. Each text is placed in a prompt
//! template (`prompt:`, with `{text}`; inside the model's own chat template, as a user message, when
//! `chat: true`), and each class is one label word, a single token of the vocabulary; the class scores
//! are the next-token logits of those words after the prompt, and training is cross-entropy over them.
//! A text too long for `max_length` loses its end, never the template's: the label words are read
//! after the template's last token.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::error::ModelError;
use crate::models::checkpoint;

/// What a spec says of the prompt (`prompt`, `chat`, `label_words`).
#[derive(Debug, Clone, Copy)]
pub struct PromptSpec<'a> {
    pub template: Option<&'a str>,
    pub chat: bool,
    pub label_words: &'a [String],
}

/// The placeholder a template puts the text at.
pub const PLACEHOLDER: &str = "{text}";

pub struct Prompting {
    /// The rendered prompt before and after the text.
    pub before: String,
    pub after: String,
    /// The label words' token ids, in class order.
    pub label_ids: Vec<u32>,
    /// The folder's tokenizer without truncation: truncation here cuts the text, not the prompt.
    tokenizer: Tokenizer,
    pub max_length: usize,
}

fn invalid(dir: &Path, message: String) -> ModelError {
    ModelError::Invalid { path: dir.to_path_buf(), message }
}

impl Prompting {
    /// The prompt of a model folder (its tokenizer, and its chat template when `chat`), each label word
    /// checked to be one token.
    pub fn new(dir: &Path, spec: PromptSpec<'_>, max_length: usize) -> Result<Prompting, ModelError> {
        let mut tokenizer = checkpoint::folder_tokenizer(dir)?;
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let template = spec.template.unwrap_or(PLACEHOLDER);
        let rendered = if spec.chat {
            let chat = checkpoint::chat_template(dir)?.ok_or_else(|| {
                invalid(
                    dir,
                    "chat: true, but the model has no chat template (tokenizer_config.json's chat_template or the GGUF's tokenizer.chat_template)".into(),
                )
            })?;
            render_chat(&chat, template).map_err(|e| invalid(dir, format!("the model's chat template: {e}")))?
        } else {
            template.to_string()
        };
        let (before, after) = rendered.split_once(PLACEHOLDER).ok_or_else(|| invalid(dir, format!("the rendered prompt lost its {PLACEHOLDER}")))?;
        let mut label_ids = Vec::with_capacity(spec.label_words.len());
        for word in spec.label_words {
            let enc = tokenizer.encode(word.as_str(), false).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
            match enc.get_ids() {
                [id] => label_ids.push(*id),
                ids => {
                    return Err(invalid(
                        dir,
                        format!(
                            "label_words: {word:?} is {} tokens ({}) in this model's vocabulary; each label word must be one token \
                             (a word after a space usually includes the space: \" spam\")",
                            ids.len(),
                            enc.get_tokens().iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(" ")
                        ),
                    ))
                }
            }
        }
        Ok(Prompting { before: before.to_string(), after: after.to_string(), label_ids, tokenizer, max_length })
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let full = format!("{}{text}{}", self.before, self.after);
        Ok(self.tokenizer.encode(full, true).map_err(|e| ModelError::Tokenizer(e.to_string()))?.get_ids().to_vec())
    }

    /// Token ids of each text in its prompt, at most `max_length`, the text's end cut where needed.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>, ModelError> {
        texts.iter().map(|t| self.tokenize_one(t.as_ref())).collect()
    }

    fn tokenize_one(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let mut ids = self.encode(text)?;
        let mut text = text;
        // Each round drops at least the excess number of the text's own tokens, so it ends.
        while ids.len() > self.max_length {
            if text.is_empty() {
                return Err(ModelError::Tokenizer(format!(
                    "the prompt without any text is {} tokens; max_length {} leaves no room for the text",
                    ids.len(),
                    self.max_length
                )));
            }
            let excess = ids.len() - self.max_length;
            let own = self.tokenizer.encode(text, false).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
            let keep = own.len().saturating_sub(excess.max(1));
            let mut cut = own.get_offsets().get(keep).map_or(0, |o| o.0).min(text.len());
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            // A token that is not at the start of its own offsets (byte-level pieces of one character)
            // can leave the cut where it was: drop one character more.
            if cut == text.len() {
                cut = text.char_indices().last().map_or(0, |(i, _)| i);
            }
            text = &text[..cut];
            ids = self.encode(text)?;
        }
        Ok(ids)
    }
}

/// The chat template rendered for one user message holding `content`, with the generation prompt
/// (the assistant's turn opened). `bos_token` renders empty: the tokenizer adds BOS itself where the
/// model wants one, and a template that writes it too would double it.
fn render_chat(template: &str, content: &str) -> Result<String, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.add_function("raise_exception", |message: String| -> Result<String, minijinja::Error> {
        Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message))
    });
    env.add_template("chat", template)?;
    let messages = vec![minijinja::context! { role => "user", content => content }];
    env.get_template("chat")?.render(minijinja::context! { messages => messages, add_generation_prompt => true, bos_token => "", eos_token => "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smollm2_s_chat_template_renders_a_user_turn_and_opens_the_assistant_s() {
        let template = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
        let out = render_chat(template, "Is this spam? {text}").unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nIs this spam? {text}<|im_end|>\n<|im_start|>assistant\n"
        );
        let err = render_chat("{{ raise_exception('only user and assistant roles') }}", "x").unwrap_err();
        assert!(err.to_string().contains("only user and assistant roles"), "{err}");
    }

    fn tiny() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama")
    }

    #[test]
    fn label_words_must_be_one_token_and_long_texts_lose_their_end_not_the_prompt() {
        let words = ["no".to_string(), "yes".to_string()];
        let spec = PromptSpec { template: Some("message : {text} . is it free ?"), chat: false, label_words: &words };
        let err = Prompting::new(&tiny(), PromptSpec { label_words: &["no".into(), "yes no".into()], ..spec }, 16).err().unwrap().to_string();
        assert!(err.contains("label_words: \"yes no\" is 2 tokens"), "{err}");
        let p = Prompting::new(&tiny(), spec, 16).unwrap();
        assert_eq!(p.label_ids.len(), 2);
        assert_ne!(p.label_ids[0], p.label_ids[1]);
        let long = "call me when you get home ".repeat(5);
        let ids = p.tokenize(&[long.as_str(), "ok"]).unwrap();
        assert_eq!(ids[0].len(), 16);
        let tail = p.tokenize(&["ok"]).unwrap()[0].clone();
        // The template's end ("." "is" "it" "free" "?") closes both.
        assert_eq!(ids[0][ids[0].len() - 5..], tail[tail.len() - 5..]);
        let short = Prompting::new(&tiny(), spec, 6).unwrap();
        let err = short.tokenize(&["ok"]).unwrap_err().to_string();
        assert!(err.contains("max_length 6 leaves no room for the text"), "{err}");
        let chat = Prompting::new(&tiny(), PromptSpec { chat: true, ..spec }, 16).err().unwrap().to_string();
        assert!(chat.contains("no chat template"), "{chat}");
    }
}
