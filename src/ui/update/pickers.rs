//! Pickers over rows: the backup to restore and the tag to deploy (rows
//! the conductor sent with its question), and a pod whose log to show.

use ratatui::layout::Constraint::{self, Length, Min};

use crate::drive::{PickRow, PickWhat};
use crate::engine::k8s::wait::Health;
use crate::ui::app::{App, Modal, PickerPurpose};
use crate::ui::widgets::picker::{Column, Picker, Row, SortKey};

/// The conductor's pick question as a picker; a row's value is its index.
pub(super) fn question_picker(step: usize, what: PickWhat, rows: &[PickRow], default: Option<usize>) -> Modal {
    match what {
        PickWhat::Backup => {
            let columns = [
                ("key", false, Min(24)),
                ("size", true, Length(10)),
                ("last modified", false, Length(20)),
                ("age", true, Length(12)),
                ("version", false, Length(24)),
            ];
            table_picker(PickerPurpose::Backup(step), "Choose the backup to restore", &columns, rows, default)
        }
        PickWhat::Tag => {
            let columns = [
                ("tag", false, Min(20)),
                ("running in", false, Min(16)),
                ("revision", true, Length(9)),
                ("age", true, Length(10)),
                ("", false, Length(8)),
            ];
            table_picker(PickerPurpose::Tag(step), "Choose the image tag to deploy", &columns, rows, default)
        }
    }
}

/// The pods of the selected step's table, to show one's logs (a failing
/// one first).
pub(super) fn pod_picker(app: &App) -> Option<Modal> {
    let table = app.pods.get(&app.selected)?;
    let columns = [
        ("pod", false, Min(24)),
        ("ready", false, Length(6)),
        ("status", false, Length(18)),
        ("restarts", true, Length(9)),
    ];
    let rows: Vec<PickRow> = table
        .rows
        .iter()
        .map(|row| PickRow {
            cells: vec![row.name.clone(), row.ready.clone(), row.status.clone(), row.restarts.to_string()],
            sort: Vec::new(),
            marked: row.health == Health::Failing,
        })
        .collect();
    let default = table.rows.iter().position(|r| r.health == Health::Failing).unwrap_or(0);
    if rows.is_empty() {
        return None;
    }
    Some(table_picker(PickerPurpose::Pod(app.selected), "Show the logs of a pod", &columns, &rows, Some(default)))
}

/// A picker over rows; a row's value is its index.
fn table_picker(
    purpose: PickerPurpose,
    title: &str,
    titles: &[(&str, bool, Constraint)],
    rows: &[PickRow],
    default: Option<usize>,
) -> Modal {
    let columns = titles
        .iter()
        .map(|(title, right, width)| Column { title: title.to_string(), width: *width, align_right: *right })
        .collect();
    let rows = rows
        .iter()
        .enumerate()
        .map(|(index, row)| Row {
            sort_keys: row
                .cells
                .iter()
                .enumerate()
                .map(|(i, cell)| match row.sort.get(i) {
                    Some(number) => SortKey::Number(*number),
                    None => SortKey::Text(cell.clone()),
                })
                .collect(),
            cells: row.cells.clone(),
            value: index.to_string(),
            marked: row.marked,
        })
        .collect();
    let default = default.unwrap_or(0).to_string();
    Modal::Picker { purpose, picker: Picker::new(title, columns, rows).with_default(&default) }
}
