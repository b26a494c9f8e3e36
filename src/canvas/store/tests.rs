//! The store against real files in temp dirs.

use std::fs;
use std::time::Duration;

use super::files::floor_file;
use super::migrate::{V1_JOURNAL, V1_SNAPSHOT};
use super::*;
use crate::canvas::model::{Author, Outcome, Stroke, StrokeKey};
use crate::canvas::picture::data_url_png;
use crate::canvas::protocol::parse_journaled_draw;

const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smolcanvas-store-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// A normalized draw of a horizontal segment from (x, y), 10 px long.
fn seg(x: u32, y: u32, color: &str, width: u32) -> Utf8Bytes {
    let text = format!(
        r#"{{"type":"draw","color":"{color}","startX":{x},"startY":{y},"endX":{},"endY":{y},"lineWidth":{width}}}"#,
        x + 10
    );
    parse_journaled_draw(&text).unwrap().encode()
}

fn draw(key: &str, author: u64, x: u32, y: u32) -> Op {
    Op::Draw { key: StrokeKey(key.into()), author: Author(author), draw: seg(x, y, "#ff0000", 6) }
}

fn apply_all(store: &mut BoardStore, ops: impl IntoIterator<Item = Op>) {
    for op in ops {
        store.apply(op);
    }
}

/// The model as comparable text: live items, then every redo stack sorted by author.
fn summary(board: &Board) -> (Vec<String>, Vec<String>, u64) {
    let items = board
        .items()
        .iter()
        .map(|item| match item {
            Item::Stroke(s) => format!("{}:{}:{}", s.key.as_str(), s.author, s.draws.len()),
            Item::Clear { author } => format!("clear:{author}"),
        })
        .collect();
    let mut undone: Vec<String> =
        board.undone().map(|s| format!("{}:{}:{}", s.key.as_str(), s.author, s.draws.len())).collect();
    undone.sort();
    (items, undone, board.committed())
}

fn pixel_of(png: &[u8], x: u32, y: u32) -> [u8; 3] {
    Picture::decode_png(png).unwrap().pixel(x, y)
}

#[test]
fn a_missing_board_loads_empty_and_stays_off_disk() {
    let data = temp_dir("missing");
    let loaded = load(&data, "nothing", 500).unwrap();
    assert!(!loaded.exists);
    assert!(loaded.board.items().is_empty() && loaded.floor_url.is_none());
    assert!(valid_token(&loaded.view));
    let mut store = loaded.store;
    assert!(!store.save(true).unwrap());
    assert!(!data.exists(), "loading and flushing an untouched board writes nothing");
}

#[test]
fn ops_saved_load_as_the_same_model_and_undo_redo_go_on() {
    let data = temp_dir("roundtrip");
    let mut store = load(&data, "b1", 500).unwrap().store;
    apply_all(
        &mut store,
        [
            draw("1.1", 1, 10, 10),
            draw("2.1", 2, 10, 30),
            draw("1.1", 1, 20, 10),
            Op::Clear { author: Author(2) },
            draw("1.2", 1, 10, 50),
            draw("1.3", 1, 10, 70),
            Op::Undo { author: Author(1) },
            Op::Undo { author: Author(1) },
            Op::Undo { author: Author(3) }, // nothing to undo: no line
        ],
    );
    let view = store.view.clone();
    assert!(store.save(false).unwrap(), "the first save creates the board whole");
    apply_all(&mut store, [draw("2.2", 2, 10, 90), Op::Undo { author: Author(2) }, Op::Redo { author: Author(2) }]);
    assert!(!store.save(false).unwrap(), "later saves append");
    let log = fs::read_to_string(data.join("boards/b1/log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1 + 3 + 2 + 3, "header, live items, redo stack, appended ops: {log}");

    let loaded = load(&data, "b1", 500).unwrap();
    assert!(loaded.exists);
    assert_eq!(loaded.view, view);
    assert_eq!(summary(&loaded.board), summary(&store.board));
    assert_eq!(loaded.board.stroke(&StrokeKey("1.1".into())).unwrap().draws.len(), 2);
    // The redo stack survived: undo again, reload, redo both.
    let mut store = loaded.store;
    apply_all(&mut store, [Op::Undo { author: Author(2) }]);
    store.save(false).unwrap();
    let mut board = load(&data, "b1", 500).unwrap().board;
    let mut commits = Vec::new();
    assert_eq!(board.apply(Op::Redo { author: Author(1) }, &mut commits), Outcome::Redid(StrokeKey("1.2".into())));
    assert_eq!(board.apply(Op::Redo { author: Author(1) }, &mut commits), Outcome::Redid(StrokeKey("1.3".into())));
    assert_eq!(board.apply(Op::Redo { author: Author(2) }, &mut commits), Outcome::Redid(StrokeKey("2.2".into())));
    assert_eq!(
        board.apply(Op::Undo { author: Author(2) }, &mut commits),
        Outcome::UndidStroke(StrokeKey("2.2".into()))
    );
    assert_eq!(board.apply(Op::Undo { author: Author(2) }, &mut commits), Outcome::UndidClear);
    fs::remove_dir_all(&data).unwrap();
}

#[test]
fn a_torn_last_line_is_skipped_and_the_log_rewritten_at_the_next_save() {
    let data = temp_dir("torn");
    let mut store = load(&data, "t", 500).unwrap().store;
    apply_all(&mut store, [draw("1.1", 1, 10, 10), draw("1.2", 1, 10, 20)]);
    store.save(false).unwrap();
    apply_all(&mut store, [draw("1.3", 1, 10, 30)]);
    store.save(false).unwrap();
    let log = data.join("boards/t/log.jsonl");
    let mut text = fs::read_to_string(&log).unwrap();
    text.push_str(r#"{"op":"draw","by":"00000000000"#);
    fs::write(&log, &text).unwrap();

    let loaded = load(&data, "t", 500).unwrap();
    assert_eq!(loaded.board.items().len(), 3);
    let mut store = loaded.store;
    assert!(!store.log_ok);
    apply_all(&mut store, [draw("1.4", 1, 10, 40)]);
    assert!(store.save(false).unwrap(), "a torn log is rewritten, not appended to");
    apply_all(&mut store, [draw("1.5", 1, 10, 50)]);
    assert!(!store.save(false).unwrap());
    let loaded = load(&data, "t", 500).unwrap();
    assert_eq!(loaded.board.items().len(), 5);
    assert!(loaded.store.log_ok);
    fs::remove_dir_all(&data).unwrap();
}

#[test]
fn compaction_keeps_everything_and_deletes_the_old_floor() {
    let data = temp_dir("compact");
    let dir = data.join("boards/c");
    let mut store = load(&data, "c", 3).unwrap().store;
    // Six strokes through a window of three: the first three are committed.
    apply_all(&mut store, (0..6).map(|i| draw(&format!("1.{i}"), 1, 100, 100 + 40 * i)));
    apply_all(&mut store, [Op::Undo { author: Author(1) }]);
    assert!(store.save(true).unwrap());
    assert!(dir.join(floor_file(1)).exists());
    apply_all(&mut store, (6..8).map(|i| draw(&format!("2.{i}"), 2, 100, 100 + 40 * i)));
    assert!(store.save(true).unwrap());
    assert!(dir.join(floor_file(2)).exists() && !dir.join(floor_file(1)).exists());
    let log = fs::read_to_string(dir.join("log.jsonl")).unwrap();
    assert!(log.starts_with(r#"{"floor":2,"committed":4}"#), "{log}");

    let loaded = load(&data, "c", 3).unwrap();
    assert_eq!(summary(&loaded.board), summary(&store.board));
    assert_eq!(summary(&loaded.board).1, ["1.5:0000000000000001:1"]);
    let floor = Picture::decode_png(&data_url_png(loaded.floor_url.as_deref().unwrap()).unwrap()).unwrap();
    for i in 0..4 {
        assert_eq!(floor.pixel(105, 100 + 40 * i), RED, "committed stroke {i} is in the floor");
    }
    assert_eq!(floor.pixel(105, 100 + 40 * 4), WHITE, "live strokes are not");
    assert_eq!(floor.pixel(105, 100 + 40 * 5), WHITE, "the undone stroke is not");
    // Nothing changed since: a flush leaves the files alone.
    let mut store = loaded.store;
    assert!(!store.save(true).unwrap());
    fs::remove_dir_all(&data).unwrap();
}

#[test]
fn the_log_is_compacted_when_it_outgrows_its_bound() {
    let data = temp_dir("bound");
    let mut store = load(&data, "g", 500).unwrap().store;
    apply_all(&mut store, [draw("1.0", 1, 0, 0)]);
    store.save(false).unwrap();
    // Undo and redo, over and over: the log grows, the board does not.
    let mut compactions = 0;
    for i in 0..COMPACT_SLACK + 2000 {
        store.apply(if i % 2 == 0 { Op::Undo { author: Author(1) } } else { Op::Redo { author: Author(1) } });
        if i % 1000 == 999 && store.save(false).unwrap() {
            compactions += 1;
        }
    }
    assert_eq!(compactions, 1);
    assert!(store.log_weight < COMPACT_SLACK);
    let loaded = load(&data, "g", 500).unwrap();
    assert_eq!(summary(&loaded.board), summary(&store.board));
    fs::remove_dir_all(&data).unwrap();
}

#[test]
fn a_crash_between_floor_and_log_loads_the_old_floor_and_cleans_up() {
    let data = temp_dir("crash");
    let dir = data.join("boards/k");
    let mut store = load(&data, "k", 2).unwrap().store;
    apply_all(&mut store, (0..4).map(|i| draw(&format!("1.{i}"), 1, 100, 100 + 40 * i)));
    store.save(true).unwrap();
    apply_all(&mut store, (4..6).map(|i| draw(&format!("1.{i}"), 1, 100, 100 + 40 * i)));
    store.save(false).unwrap();
    // The next compaction got as far as writing the new floor (here: all blue) before the crash.
    let mut blue = Picture::blank();
    blue.paint(&[Segment { x0: 0.0, y0: 360.0, x1: 1280.0, y1: 360.0, width: 800.0, rgb: BLUE }]);
    fs::write(dir.join(floor_file(2)), blue.encode_png()).unwrap();
    fs::write(dir.join("log.jsonl.tmp"), "{\"floor\":2,").unwrap();

    let loaded = load(&data, "k", 2).unwrap();
    assert_eq!(summary(&loaded.board), summary(&store.board));
    let floor = Picture::decode_png(&data_url_png(loaded.floor_url.as_deref().unwrap()).unwrap()).unwrap();
    for i in 0..4 {
        assert_eq!(floor.pixel(105, 100 + 40 * i), RED);
    }
    assert_eq!(floor.pixel(5, 5), WHITE);
    assert!(!dir.join(floor_file(2)).exists() && !dir.join("log.jsonl.tmp").exists());
    // The next compaction does not reuse the name of a file it may not have removed.
    let mut store = loaded.store;
    assert!(store.save(true).unwrap());
    assert!(dir.join(floor_file(3)).exists() && !dir.join(floor_file(1)).exists());

    // And a crash after the new log but before the old floor was removed.
    fs::write(dir.join(floor_file(1)), blue.encode_png()).unwrap();
    let loaded = load(&data, "k", 2).unwrap();
    assert_eq!(summary(&loaded.board), summary(&store.board));
    assert!(!dir.join(floor_file(1)).exists());
    fs::remove_dir_all(&data).unwrap();
}

#[test]
fn render_stored_draws_floor_and_visible_strokes_and_none_for_a_missing_board() {
    let data = temp_dir("render");
    assert!(render_stored(&data, "none", 500).unwrap().is_none());
    let mut store = load(&data, "r", 2).unwrap().store;
    apply_all(&mut store, (0..3).map(|i| draw(&format!("1.{i}"), 1, 100, 100 + 40 * i)));
    store.apply(Op::Draw { key: StrokeKey("2.1".into()), author: Author(2), draw: seg(300, 300, "#00f", 8) });
    store.save(false).unwrap();
    let png = render_stored(&data, "r", 2).unwrap().unwrap();
    assert_eq!(pixel_of(&png, 105, 100), RED, "the floor");
    assert_eq!(pixel_of(&png, 105, 180), RED, "a live stroke");
    assert_eq!(pixel_of(&png, 305, 300), BLUE, "another live stroke");
    assert_eq!(pixel_of(&png, 600, 600), WHITE);
    // A live clear hides the floor and what came before it.
    store.apply(Op::Clear { author: Author(3) });
    store.save(false).unwrap();
    let png = render_stored(&data, "r", 2).unwrap().unwrap();
    assert_eq!(pixel_of(&png, 105, 100), WHITE);
    assert_eq!(pixel_of(&png, 305, 300), WHITE);
    fs::remove_dir_all(&data).unwrap();
}

#[test]
fn scan_finds_boards_and_ignores_other_folders() {
    let data = temp_dir("scan");
    let mut views = Vec::new();
    for name in ["b", "a-1"] {
        let mut store = load(&data, name, 500).unwrap().store;
        store.apply(draw("1.1", 1, 0, 0));
        store.save(false).unwrap();
        views.push((name.to_string(), store.view.clone()));
    }
    views.sort();
    fs::create_dir_all(data.join("boards/not a name")).unwrap();
    fs::write(data.join("boards/not a name/meta.json"), r#"{"view":"aaaaaaaaaaaaaaaaaaaaaa"}"#).unwrap();
    fs::create_dir_all(data.join("boards/nometa")).unwrap();
    fs::write(data.join("boards/file"), "x").unwrap();
    assert_eq!(scan(&data).unwrap(), views);
    assert!(scan(&temp_dir("scan-empty")).unwrap().is_empty());
    fs::remove_dir_all(&data).unwrap();
}

/// A 640 x 360 white PNG with a blue block at (0..100, 0..50).
fn small_snapshot() -> Vec<u8> {
    let (w, h) = (640u32, 360u32);
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    for y in 0..50 {
        for x in 0..100 {
            let at = ((y * w + x) * 3) as usize;
            pixels[at..at + 3].copy_from_slice(&BLUE);
        }
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    png
}

/// Where v1 journal draw `i` of 1200 is: a 40 x 30 grid of 32 x 24 cells.
fn cell(i: u32) -> (u32, u32) {
    (32 * (i % 40) + 8, 24 * (i / 40) + 12)
}

#[test]
fn a_v1_data_dir_becomes_board_main_once() {
    let data = temp_dir("v1");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join(V1_SNAPSHOT), png_data_url(&small_snapshot())).unwrap();
    let mut journal = String::new();
    for i in 0..1200 {
        let (x, y) = cell(i);
        journal.push_str(&seg(x, y, "#f00", 4));
        journal.push('\n');
    }
    journal.push_str(r##"{"type":"draw","color":"#f"##);
    fs::write(data.join(V1_JOURNAL), journal).unwrap();

    assert!(migrate_v1(&data, 500).unwrap());
    assert!(!data.join(V1_SNAPSHOT).exists() && !data.join(V1_JOURNAL).exists());
    assert!(data.join("v1-migrated").join(V1_SNAPSHOT).exists());
    assert!(data.join("v1-migrated").join(V1_JOURNAL).exists());
    assert!(!data.join("boards/.main.v1").exists());
    assert!(!migrate_v1(&data, 500).unwrap(), "migrating again does nothing");

    let loaded = load(&data, "main", 500).unwrap();
    assert!(loaded.exists);
    assert_eq!(loaded.board.items().len(), 500);
    assert_eq!(loaded.board.committed(), 700);
    let first = loaded.board.items().front().and_then(|item| match item {
        Item::Stroke(Stroke { key, author, .. }) => Some((key.as_str().to_string(), *author)),
        Item::Clear { .. } => None,
    });
    assert_eq!(first, Some(("v1-0.701".to_string(), Author::NOBODY)));
    let floor = Picture::decode_png(&data_url_png(loaded.floor_url.as_deref().unwrap()).unwrap()).unwrap();
    assert_eq!(floor.pixel(100, 60), BLUE, "the snapshot, scaled to 1280 x 720");
    assert_eq!(floor.pixel(1000, 700), WHITE);
    let (x, y) = cell(699);
    assert_eq!(floor.pixel(x + 5, y), RED, "committed draws are in the floor");
    let (x, y) = cell(700);
    assert_eq!(floor.pixel(x + 5, y), WHITE, "live ones are not");
    assert_eq!(scan(&data).unwrap().len(), 1);
    fs::remove_dir_all(&data).unwrap();
}

#[test]
fn a_migration_interrupted_before_the_move_is_finished_without_migrating_again() {
    let data = temp_dir("v1-half");
    fs::create_dir_all(data.join("boards/main")).unwrap();
    fs::write(data.join(V1_JOURNAL), format!("{}\n", seg(1, 1, "#000", 3))).unwrap();
    fs::create_dir_all(data.join("v1-migrated")).unwrap();
    fs::write(data.join("v1-migrated").join(V1_JOURNAL), "older\n").unwrap();
    assert!(!migrate_v1(&data, 500).unwrap());
    assert!(!data.join(V1_JOURNAL).exists());
    assert_eq!(fs::read_to_string(data.join("v1-migrated").join(V1_JOURNAL)).unwrap(), "older\n");
    assert!(data.join("v1-migrated").join(format!("{V1_JOURNAL}.1")).exists());
    assert!(fs::read_dir(data.join("boards/main")).unwrap().next().is_none(), "main untouched");
    assert!(!migrate_v1(&temp_dir("v1-none"), 500).unwrap());
    fs::remove_dir_all(&data).unwrap();
}

/// Runs a store task on `store` while `driver` talks to it; returns the driver's result.
fn with_task<T>(
    store: BoardStore,
    flush_interval: Duration,
    metrics: &StoreMetrics,
    driver: impl AsyncFnOnce(async_channel::Sender<StoreMsg>, async_channel::Receiver<StoreNews>) -> T,
) -> T {
    let (tx, rx) = async_channel::unbounded();
    let (news_tx, news) = async_channel::unbounded();
    smol::block_on(async {
        let task = store.run(rx, news_tx, flush_interval, metrics, None);
        futures_lite::future::zip(task, driver(tx, news)).await.1
    })
}

#[test]
fn the_task_exports_sends_floor_news_and_flushes() {
    let data = temp_dir("task");
    let store = load(&data, "x", 2).unwrap().store;
    let (png, news, flushed) = with_task(store, Duration::from_secs(60), &StoreMetrics::default(), async |tx, news| {
        let (reply, png) = async_channel::bounded(1);
        let (done, flushed) = async_channel::bounded(1);
        tx.send(StoreMsg::Flush { done: done.clone() }).await.unwrap();
        assert!(flushed.recv().await.unwrap(), "nothing to save is saved");
        for i in 0..3 {
            tx.send(StoreMsg::Op(draw(&format!("1.{i}"), 1, 100, 100 + 40 * i))).await.unwrap();
        }
        tx.send(StoreMsg::Export { reply }).await.unwrap();
        let png = png.recv().await.unwrap().unwrap();
        let news = news.recv().await.unwrap();
        tx.send(StoreMsg::Flush { done }).await.unwrap();
        let flushed = flushed.recv().await.unwrap();
        assert!(data.join("boards/x").join(floor_file(1)).exists(), "the flush compacted the changed floor");
        // Closing the channel (unloading) saves what came after.
        tx.send(StoreMsg::Op(draw("1.3", 1, 100, 220))).await.unwrap();
        (png, news, flushed)
    });
    for i in 0..3 {
        assert_eq!(pixel_of(&png, 105, 100 + 40 * i), RED);
    }
    let StoreNews::Floor { committed: 1, url: Some(url) } = news else { panic!("{news:?}") };
    assert_eq!(Picture::decode_png(&data_url_png(&url).unwrap()).unwrap().pixel(105, 100), RED);
    assert!(flushed);
    let loaded = load(&data, "x", 2).unwrap();
    assert_eq!(loaded.board.items().len(), 2);
    assert_eq!(loaded.board.committed(), 2);
    assert!(loaded.board.stroke(&StrokeKey("1.3".into())).is_some());
    assert!(data.join("boards/x").join(floor_file(2)).exists() && !data.join("boards/x").join(floor_file(1)).exists());
    fs::remove_dir_all(&data).unwrap();
}

#[test]
fn a_failing_disk_keeps_the_ops_and_saves_them_once_it_works() {
    let data = temp_dir("fail");
    // A file where the board folder must go fails every save, even for root.
    fs::create_dir_all(data.join("boards")).unwrap();
    fs::write(data.join("boards/f"), "in the way").unwrap();
    let loaded = load(&data, "f", 500).unwrap();
    assert!(!loaded.exists);
    let store = loaded.store;
    let metrics = StoreMetrics::default();
    let items = with_task(store, Duration::from_millis(20), &metrics, async |tx, news| {
        tx.send(StoreMsg::Op(draw("1.1", 1, 10, 10))).await.unwrap();
        let StoreNews::Saving(Some(problem)) = news.recv().await.unwrap() else { panic!("expected Saving(Some)") };
        assert!(problem.contains("meta.json"), "{problem}");
        let (done, flushed) = async_channel::bounded(1);
        tx.send(StoreMsg::Flush { done: done.clone() }).await.unwrap();
        assert!(!flushed.recv().await.unwrap());
        tx.send(StoreMsg::Op(draw("1.2", 1, 10, 20))).await.unwrap();
        fs::remove_file(data.join("boards/f")).unwrap();
        // The retry (every 0.5 s here) finds the disk working.
        assert_eq!(news.recv().await.unwrap(), StoreNews::Saving(None));
        tx.send(StoreMsg::Op(draw("1.3", 1, 10, 30))).await.unwrap();
        tx.send(StoreMsg::Flush { done }).await.unwrap();
        assert!(flushed.recv().await.unwrap());
        let loaded = load(&data, "f", 500).unwrap();
        loaded.board.items().len()
    });
    assert_eq!(items, 3);
    let errors = metrics.store_errors.load(std::sync::atomic::Ordering::Relaxed);
    assert!(errors >= 2, "the first save and the flush failed: {errors}");
    assert_eq!(metrics.boards_not_saving.load(std::sync::atomic::Ordering::Relaxed), 0);
    fs::remove_dir_all(&data).unwrap();
}
