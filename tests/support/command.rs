//! Which `smolcanvas` binary a process test runs: the one cargo built for this test run, or the
//! command line in `$SMOLCANVAS_SMOKE_CMD` (shell words, such as an emulator in front of a
//! cross-built binary).

/// The binary cargo built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_smolcanvas");

/// The environment variable holding the server command line (shell words).
pub const CMD_VAR: &str = "SMOLCANVAS_SMOKE_CMD";

/// Splits `line` into words the way a POSIX shell does for plain words: blanks separate, single
/// quotes keep everything, double quotes keep everything but `\"`, `\\`, `\$` and `` \` ``, and a
/// backslash outside quotes keeps the next character. No expansions.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated single quote in {line:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unterminated double quote in {line:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated double quote in {line:?}")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err(format!("trailing backslash in {line:?}")),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The command that starts the server: `$SMOLCANVAS_SMOKE_CMD` if set and not blank, else the
/// binary cargo built for this test run.
pub fn server_command() -> Vec<String> {
    match std::env::var(CMD_VAR) {
        Ok(line) if !line.trim().is_empty() => {
            split_words(&line).unwrap_or_else(|err| panic!("cannot parse {CMD_VAR}: {err}"))
        }
        _ => vec![BIN.to_string()],
    }
}
