//! A board as the server owns it: the items above the floor, per-author redo stacks, and the undo window.
//!
//! The model is a pure state machine over [`Op`]s. The hub applies each op
//! as it happens, the store task applies the same ops in the same order to
//! its own copy (and paints what leaves the window into the floor), and a
//! restart replays them from the board's log: the three agree because
//! [`Board::apply`] is deterministic.
//!
//! What a board shows: start from the floor; for each live item in order, a
//! stroke paints its draws and a clear wipes everything before it (the floor
//! too). Undo removes the author's newest live item: a stroke goes onto the
//! author's redo stack, a clear is gone for good (what it wiped shows again).
//! Redo puts the author's most recently undone stroke back on top. When more
//! than `window` items are live the oldest leaves the window: it is
//! *committed* into the floor and can no longer be undone.

#![allow(dead_code)] // Wired into the board hub and store next.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use async_tungstenite::tungstenite::Utf8Bytes;

/// Who drew something: a hash of the author secret a v2 client sent in
/// `hello`, or of its connection when it sent none. Never the secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Author(pub u64);

impl Author {
    /// The author of items migrated from a v1 data dir: no client hashes to it, so nobody can undo them.
    pub const NOBODY: Author = Author(0);
}

impl fmt::Display for Author {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A stroke's key on its board: the drawer's `clientId`, a dot and the stroke number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StrokeKey(pub Arc<str>);

impl StrokeKey {
    /// The key as sent to v2 clients.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One pointer-down to pointer-up: its segments, each the normalized v1 `draw` message.
#[derive(Clone, Debug, PartialEq)]
pub struct Stroke {
    /// Unique on the board.
    pub key: StrokeKey,
    /// Who may undo it.
    pub author: Author,
    /// The segments in the order they arrived.
    pub draws: Vec<Utf8Bytes>,
}

/// Something live above the floor.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// Paints its draws.
    Stroke(Stroke),
    /// Wipes everything before it, the floor included.
    Clear {
        /// Who may undo it.
        author: Author,
    },
}

impl Item {
    /// Who made it.
    pub fn author(&self) -> Author {
        match self {
            Item::Stroke(stroke) => stroke.author,
            Item::Clear { author } => *author,
        }
    }
}

/// A change to a board, as clients cause it and as the log keeps it.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A segment of the stroke `key` (a new stroke if `key` is not live).
    Draw {
        /// The stroke it belongs to.
        key: StrokeKey,
        /// The drawer.
        author: Author,
        /// The normalized v1 `draw` message.
        draw: Utf8Bytes,
    },
    /// A clear by `author`.
    Clear {
        /// The clearer.
        author: Author,
    },
    /// `author` undoes their newest live item.
    Undo {
        /// Whose item.
        author: Author,
    },
    /// `author` redoes their most recently undone stroke.
    Redo {
        /// Whose stroke.
        author: Author,
    },
    /// A whole stroke restored from the log's compacted form.
    Restore(Stroke),
    /// A whole stroke restored onto its author's redo stack (the log's compacted form).
    RestoreUndone(Stroke),
}

/// What applying an [`Op`] did, for the hub to tell the clients.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A segment joined a live stroke, or started one.
    Drew,
    /// A clear became the newest item.
    Cleared,
    /// This stroke was undone.
    UndidStroke(StrokeKey),
    /// A clear was undone: what it wiped shows again.
    UndidClear,
    /// This stroke came back on top (it is now the newest item).
    Redid(StrokeKey),
    /// Nothing changed (nothing to undo or redo).
    Nothing,
}

/// A board's live items and redo stacks. See the module doc.
#[derive(Clone, Debug)]
pub struct Board {
    items: VecDeque<Item>,
    /// How many live strokes have each key (one, unless a key was reused):
    /// a draw whose key is not here starts a stroke without a search.
    live_keys: HashMap<StrokeKey, u32>,
    undone: HashMap<Author, Vec<Stroke>>,
    window: usize,
    committed: u64,
}

impl Board {
    /// An empty board keeping `window` items live (at least one).
    pub fn new(window: usize) -> Board {
        Board {
            items: VecDeque::new(),
            live_keys: HashMap::new(),
            undone: HashMap::new(),
            window: window.max(1),
            committed: 0,
        }
    }

    /// Applies `op`; items that leave the window are appended to `commits`, oldest first.
    pub fn apply(&mut self, op: Op, commits: &mut Vec<Item>) -> Outcome {
        let outcome = match op {
            Op::Draw { key, author, draw } => {
                let live = self.live_keys.contains_key(&key);
                let found = if live {
                    self.items.iter_mut().rev().find_map(|item| match item {
                        Item::Stroke(stroke) if stroke.key == key => Some(stroke),
                        _ => None,
                    })
                } else {
                    None
                };
                match found {
                    Some(stroke) => stroke.draws.push(draw),
                    None => {
                        self.undone.remove(&author);
                        self.push(Item::Stroke(Stroke { key, author, draws: vec![draw] }));
                    }
                }
                Outcome::Drew
            }
            Op::Clear { author } => {
                self.undone.remove(&author);
                self.push(Item::Clear { author });
                Outcome::Cleared
            }
            Op::Undo { author } => match self.items.iter().rposition(|item| item.author() == author) {
                None => Outcome::Nothing,
                Some(at) => match self.items.remove(at).inspect(|item| self.forget(item)) {
                    Some(Item::Stroke(stroke)) => {
                        let key = stroke.key.clone();
                        let stack = self.undone.entry(author).or_default();
                        stack.push(stroke);
                        // An author's redo stack never holds more than the window could.
                        if stack.len() > self.window {
                            stack.remove(0);
                        }
                        Outcome::UndidStroke(key)
                    }
                    _ => Outcome::UndidClear,
                },
            },
            Op::Redo { author } => match self.undone.get_mut(&author).and_then(Vec::pop) {
                None => Outcome::Nothing,
                Some(stroke) => {
                    let key = stroke.key.clone();
                    self.push(Item::Stroke(stroke));
                    Outcome::Redid(key)
                }
            },
            Op::Restore(stroke) => {
                self.push(Item::Stroke(stroke));
                Outcome::Drew
            }
            Op::RestoreUndone(stroke) => {
                self.undone.entry(stroke.author).or_default().push(stroke);
                Outcome::Nothing
            }
        };
        while self.items.len() > self.window {
            if let Some(item) = self.items.pop_front() {
                self.forget(&item);
                self.committed += 1;
                commits.push(item);
            }
        }
        outcome
    }

    fn push(&mut self, item: Item) {
        if let Item::Stroke(stroke) = &item {
            *self.live_keys.entry(stroke.key.clone()).or_default() += 1;
        }
        self.items.push_back(item);
    }

    /// Takes an item that leaves the live list out of the key index.
    fn forget(&mut self, item: &Item) {
        if let Item::Stroke(stroke) = item
            && let Some(count) = self.live_keys.get_mut(&stroke.key)
        {
            *count -= 1;
            if *count == 0 {
                self.live_keys.remove(&stroke.key);
            }
        }
    }

    /// The live items, oldest first.
    pub fn items(&self) -> &VecDeque<Item> {
        &self.items
    }

    /// The newest live item, if any.
    pub fn newest(&self) -> Option<&Item> {
        self.items.back()
    }

    /// The live stroke with this key.
    pub fn stroke(&self, key: &StrokeKey) -> Option<&Stroke> {
        if !self.live_keys.contains_key(key) {
            return None;
        }
        self.items.iter().rev().find_map(|item| match item {
            Item::Stroke(stroke) if &stroke.key == key => Some(stroke),
            _ => None,
        })
    }

    /// Every author's undone strokes, bottom of each stack first (for the log's compacted form).
    pub fn undone(&self) -> impl Iterator<Item = &Stroke> {
        self.undone.values().flatten()
    }

    /// Items committed into the floor since the board began.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Sets the committed count (a board loaded from its log starts where the floor is).
    pub fn set_committed(&mut self, committed: u64) {
        self.committed = committed;
    }

    /// Draws in the live strokes and on the redo stacks (what the board holds in memory).
    pub fn draw_count(&self) -> usize {
        let live: usize =
            self.items.iter().map(|item| if let Item::Stroke(s) = item { s.draws.len() } else { 0 }).sum();
        live + self.undone().map(|s| s.draws.len()).sum::<usize>()
    }
}

/// The items that show on top of a floor, given those above it (`items`):
/// whether the floor shows (no clear among them), and the strokes after the last clear.
pub fn visible<'a>(items: impl DoubleEndedIterator<Item = &'a Item> + Clone) -> (bool, Vec<&'a Stroke>) {
    let mut strokes: Vec<&Stroke> = Vec::new();
    for item in items.rev() {
        match item {
            Item::Stroke(stroke) => strokes.push(stroke),
            Item::Clear { .. } => {
                strokes.reverse();
                return (false, strokes);
            }
        }
    }
    strokes.reverse();
    (true, strokes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> StrokeKey {
        StrokeKey(k.into())
    }

    fn draw(board: &mut Board, k: &str, author: u64) -> Vec<Item> {
        let mut commits = Vec::new();
        let op = Op::Draw { key: key(k), author: Author(author), draw: Utf8Bytes::from(k.to_string()) };
        board.apply(op, &mut commits);
        commits
    }

    fn apply(board: &mut Board, op: Op) -> Outcome {
        board.apply(op, &mut Vec::new())
    }

    fn keys(board: &Board) -> Vec<String> {
        board
            .items()
            .iter()
            .map(|item| match item {
                Item::Stroke(s) => s.key.as_str().to_string(),
                Item::Clear { .. } => "clear".to_string(),
            })
            .collect()
    }

    #[test]
    fn segments_of_one_key_form_one_stroke_even_when_interleaved() {
        let mut board = Board::new(10);
        draw(&mut board, "1.1", 1);
        draw(&mut board, "2.1", 2);
        draw(&mut board, "1.1", 1);
        assert_eq!(keys(&board), ["1.1", "2.1"]);
        assert_eq!(board.stroke(&key("1.1")).map(|s| s.draws.len()), Some(2));
    }

    #[test]
    fn undo_takes_the_authors_newest_and_redo_puts_it_back_on_top() {
        let mut board = Board::new(10);
        draw(&mut board, "1.1", 1);
        draw(&mut board, "1.2", 1);
        draw(&mut board, "2.1", 2);
        assert_eq!(apply(&mut board, Op::Undo { author: Author(1) }), Outcome::UndidStroke(key("1.2")));
        assert_eq!(keys(&board), ["1.1", "2.1"]);
        assert_eq!(apply(&mut board, Op::Redo { author: Author(1) }), Outcome::Redid(key("1.2")));
        assert_eq!(keys(&board), ["1.1", "2.1", "1.2"]);
        assert_eq!(apply(&mut board, Op::Redo { author: Author(1) }), Outcome::Nothing);
        assert_eq!(apply(&mut board, Op::Undo { author: Author(3) }), Outcome::Nothing);
    }

    #[test]
    fn a_new_stroke_drops_the_authors_redo_stack_only() {
        let mut board = Board::new(10);
        draw(&mut board, "1.1", 1);
        draw(&mut board, "2.1", 2);
        apply(&mut board, Op::Undo { author: Author(1) });
        apply(&mut board, Op::Undo { author: Author(2) });
        draw(&mut board, "1.2", 1);
        assert_eq!(apply(&mut board, Op::Redo { author: Author(1) }), Outcome::Nothing);
        assert_eq!(apply(&mut board, Op::Redo { author: Author(2) }), Outcome::Redid(key("2.1")));
    }

    #[test]
    fn an_undone_clear_shows_what_it_wiped_beneath_what_came_after() {
        let mut board = Board::new(10);
        draw(&mut board, "1.1", 1);
        apply(&mut board, Op::Clear { author: Author(2) });
        draw(&mut board, "1.2", 1);
        let (floor, strokes) = visible(board.items().iter());
        assert!(!floor);
        assert_eq!(strokes.len(), 1);
        assert_eq!(apply(&mut board, Op::Undo { author: Author(2) }), Outcome::UndidClear);
        let (floor, strokes) = visible(board.items().iter());
        assert!(floor);
        let shown: Vec<&str> = strokes.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(shown, ["1.1", "1.2"]);
        // A clear cannot be redone.
        assert_eq!(apply(&mut board, Op::Redo { author: Author(2) }), Outcome::Nothing);
    }

    #[test]
    fn items_past_the_window_are_committed_and_cannot_be_undone() {
        let mut board = Board::new(2);
        assert!(draw(&mut board, "1.1", 1).is_empty());
        draw(&mut board, "1.2", 1);
        let commits = draw(&mut board, "2.1", 2);
        assert_eq!(commits.len(), 1);
        assert_eq!(board.committed(), 1);
        assert_eq!(apply(&mut board, Op::Undo { author: Author(1) }), Outcome::UndidStroke(key("1.2")));
        assert_eq!(apply(&mut board, Op::Undo { author: Author(1) }), Outcome::Nothing);
    }
}
