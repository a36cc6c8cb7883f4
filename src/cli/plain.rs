//! The line-oriented front-end: what the conductor reports, printed one
//! line at a time with a gutter for step output; its questions asked as
//! lines of input. Used in pipes, for scheduled drills (`--plain --yes`)
//! and by the tests. It decides nothing about the drill: every answer goes
//! to the conductor, which journals and acts on it.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::UiArgs;
use super::input::Input;
use crate::drill::event::{AttemptResult, Event, SkipCause};
use crate::drill::journal::Record;
use crate::drill::state::DrillState;
use crate::drive::session::{DrillSession, ResumeNotice};
use crate::drive::{self, Answer, Ending, Link, PickWhat, PodTableLines, Question, Request, Summary, Update};
use crate::engine::{Lines, OutputStream};
use crate::runbook::duration::format_duration;

/// Progress with a percentage is printed at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Runs the drill to its end, a stop signal, or missing input.
pub fn drive(
    session: DrillSession,
    input: Input,
    ui: UiArgs,
    notice: Option<ResumeNotice>,
    abort: bool,
) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let options = drive::Options {
            unattended: ui.yes,
            abort,
            report_to: ui.report_to.clone(),
            on_second_signal: || std::process::exit(130),
            // With someone at the keyboard, Ctrl-C stops the step and asks;
            // an unattended drill has nobody to ask, so it pauses the drill.
            interrupt_stops_the_step: !ui.yes,
            archive: crate::config::archive(),
        };
        let runbook = session.runbook.clone();
        let mut link = drive::start(session, notice, options).map_err(|e| e.to_string())?;
        let mut plain = Plain {
            runbook,
            out: Printer::new(),
            input,
            state: None,
            journal: String::new(),
            headed: None,
            shown_command: None,
            progress_at: None,
            pods: PodTableLines::default(),
        };
        plain.run(&mut link).await
    })
}

/// What waiting for a line of input brought.
enum Line {
    Text(String),
    /// Standard input is closed.
    Eof,
    /// The conductor ended meanwhile (a signal).
    Ended(Ending),
}

struct Plain {
    /// The runbook the drill runs (its snapshot), for what questions leave out.
    runbook: crate::runbook::Runbook,
    out: Printer,
    input: Input,
    /// The drill as journaled, mirrored from the conductor's records.
    state: Option<DrillState>,
    journal: String,
    /// The step whose heading was printed last.
    headed: Option<usize>,
    /// A step whose command a confirmation already showed.
    shown_command: Option<usize>,
    progress_at: Option<Instant>,
    pods: PodTableLines,
}

impl Plain {
    async fn run(&mut self, link: &mut Link) -> Result<ExitCode, String> {
        while let Some(update) = link.updates.recv().await {
            let ending = match update {
                Update::Ask { id, question } => self.answer(link, id, question).await,
                Update::Ended(ending) => Some(ending),
                Update::Finished(summary) => {
                    self.summary(&summary);
                    let _ = link.inputs.send(drive::Input::Request(Request::Quit { reason: "finished".into() }));
                    None
                }
                other => {
                    self.show(other);
                    None
                }
            };
            if let Some(ending) = ending {
                return self.ended(ending);
            }
        }
        Err("the drill's conductor stopped without a word".into())
    }

    fn ended(&mut self, ending: Ending) -> Result<ExitCode, String> {
        if let Some(error) = ending.error {
            return Err(error);
        }
        if let (Some(reason), Some(state)) = (ending.paused.filter(|_| ending.code == 130), &self.state) {
            let id = &state.drill_id;
            self.out.line(&format!("\n{reason}: the drill is paused. Resume it with `drillbook resume {id}`."));
        }
        Ok(ExitCode::from(ending.code))
    }

    fn show(&mut self, update: Update) {
        match update {
            Update::Opened { id, dir, state, notices, resumed } => {
                self.journal = dir.join("journal.jsonl").display().to_string();
                self.state = Some(*state);
                self.header(&id, resumed, &notices);
            }
            Update::Recorded(records) => {
                for record in records {
                    self.recorded(&record);
                    if let Some(state) = self.state.as_mut() {
                        let _ = state.apply(&record);
                    }
                }
            }
            Update::StepBegins { step, help, url } => {
                self.heading(step);
                if let Some(help) = help {
                    for line in help.trim().lines() {
                        self.out.line(&format!("  {line}"));
                    }
                }
                if let Some(url) = url {
                    self.out.line(&format!("  open: {url}"));
                }
            }
            Update::Output { stream, lines, .. } => {
                if let Some(table) = self.pods.flush() {
                    self.out.output(OutputStream::Stdout, &table);
                }
                self.out.output_lines(stream, &lines);
            }
            Update::Progress { message, .. } => {
                let due = self.progress_at.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
                if message.contains('%') && !due {
                    return;
                }
                // Kubernetes steps say as much in their output and pod tables.
                if self.kind_of_running().is_some_and(|kind| {
                    kind.starts_with("k8s-") || matches!(kind, "http-check" | "dns-check" | "browser-check")
                }) {
                    return;
                }
                self.progress_at = Some(Instant::now());
                self.out.output(OutputStream::Stdout, std::slice::from_ref(&message));
            }
            Update::Pods { table, .. } => {
                if let Some(lines) = self.pods.offer(&table) {
                    self.out.output(OutputStream::Stdout, &lines);
                }
            }
            Update::Notice(text) => self.out.line(&text),
            Update::Ask { .. } | Update::Finished(_) | Update::Ended(_) => {}
        }
    }

    fn kind_of_running(&self) -> Option<&str> {
        Some(self.state.as_ref()?.running_step()?.outline.kind.as_str())
    }

    fn header(&mut self, id: &str, resumed: bool, notices: &[String]) {
        let Some(state) = &self.state else { return };
        let verb = if resumed { "Resuming" } else { "Starting" };
        let training = if state.training { " [training]" } else { "" };
        let mut lines = vec![
            format!("{verb} drill {id}{training}"),
            format!("  runbook: {} ({}), {} steps", state.runbook_title, state.runbook_id, state.steps.len()),
        ];
        if let Some(target) = state.rto_target {
            lines.push(format!("  RTO target: {}", format_duration(target)));
        }
        lines.extend(state.vars.iter().map(|(name, value)| format!("  {name} = {value}")));
        lines.extend(state.secret_vars.iter().map(|name| format!("  {name} = *** (secret)")));
        lines.push(format!("  journal: {}", self.journal));
        for notice in notices {
            let note = if notice.starts_with("training:") { "" } else { "note: " };
            lines.push(format!("  {note}{notice}"));
        }
        if resumed {
            for (index, step) in state.steps.iter().enumerate() {
                lines.push(format!("  [{}] {:<12} {}", index + 1, step.status.label(), step.outline.id));
            }
        }
        for line in lines {
            self.out.line(&line);
        }
    }

    /// `[2/7] Restore the backup (restore)`.
    fn heading(&mut self, step: usize) {
        let Some(state) = &self.state else { return };
        let Some(outline) = state.steps.get(step).map(|s| &s.outline) else { return };
        let text = format!("[{}/{}] {} ({})", step + 1, state.steps.len(), outline.title, outline.id);
        self.out.heading(&text);
        self.headed = Some(step);
    }

    /// The heading of `step` unless it was the last one printed.
    fn head(&mut self, step: &str) -> Option<usize> {
        let index = self.state.as_ref()?.step_index(step)?;
        if self.headed != Some(index) {
            self.heading(index);
        }
        Some(index)
    }

    /// One line for a record worth a line.
    fn recorded(&mut self, record: &Record<Event>) {
        match &record.event {
            Event::StepStarted { step, command: Some(command), .. } => {
                let Some(index) = self.head(step) else { return };
                let is_command = self.state.as_ref().is_some_and(|s| s.steps[index].outline.kind == "command");
                if is_command && self.shown_command != Some(index) {
                    self.out.line(&format!("  $ {}", command.replace('\n', "\n    ")));
                }
                self.shown_command = None;
            }
            Event::CaptureSet { step, name, value } => {
                self.head(step);
                let image = value.fields.get("image").and_then(|i| i.as_str()).map(|i| format!(" ({i})"));
                self.out.line(&format!("  captured {name} = {}{}", value.value, image.unwrap_or_default()));
            }
            Event::StepFinished { step, result, reason, duration_ms, exit_code, .. } => {
                self.head(step);
                if let Some(table) = self.pods.flush() {
                    self.out.output(OutputStream::Stdout, &table);
                }
                let took = format_duration(Duration::from_millis(*duration_ms));
                let reason = reason.clone().unwrap_or_else(|| format!("{result:?}").to_lowercase());
                self.out.line(&match (result, exit_code) {
                    (AttemptResult::Succeeded, _) => format!("  ✓ done in {took}"),
                    (_, Some(_)) => format!("  ✗ failed after {took}: {reason}"),
                    (_, None) => format!("  ✗ failed: {reason}"),
                });
            }
            Event::StepSkipped { step, cause, reason } => {
                self.head(step);
                match cause {
                    // The conductor said why when it decided.
                    SkipCause::NonInteractive => {}
                    SkipCause::Operator if reason == "not confirmed" => self.out.line("  not confirmed: skipped"),
                    _ => self.out.line(&format!("  skipped: {reason}")),
                }
            }
            Event::StepMarkedDone { step, note } => {
                self.head(step);
                self.out.line(&format!("  marked done: {note}"));
            }
            _ => {}
        }
    }

    fn summary(&mut self, summary: &Summary) {
        let report = &summary.report;
        self.out.heading(&format!("Drill {}: {}", report.outcome, report.runbook.title));
        let deciding: Vec<_> = report.findings.iter().filter(|f| f.fails || report.outcome != "failed").collect();
        if !deciding.is_empty() {
            self.out.line(if report.outcome == "failed" { "  failed because:" } else { "  deviations:" });
            for finding in deciding {
                let step = finding.step.as_ref().map(|s| format!("`{s}` ")).unwrap_or_default();
                self.out.line(&format!("    {step}{}: {}", finding.kind, finding.text));
            }
        }
        for step in &report.steps {
            let detail = step.detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default();
            self.out.line(&format!("  {:<12} {}{detail}", step.status, step.id));
        }
        self.out.line(&format!("  RTO {}: {}", report.rto.verdict, report.rto.detail));
        self.out.line(&format!("  RPO {}: {}", report.rpo.verdict, report.rpo.detail));
        if let Some(rpo_data) = &report.rpo_data {
            self.out.line(&format!("  RPO by data {}: {}", rpo_data.verdict, rpo_data.detail));
        }
        match &summary.written {
            Ok(paths) => {
                let dir = paths.first().and_then(|p| p.parent()).map(|d| d.display().to_string()).unwrap_or_default();
                self.out.line(&format!("  reports: {} in {dir}", drive::report_names(paths).join(", ")));
            }
            Err(error) => self.out.line(&format!("  could not write the reports: {error}")),
        }
        self.out.line(&format!("  report: drillbook report {}", report.drill_id));
    }

    fn step_title(&self, step: usize) -> (String, String) {
        self.state
            .as_ref()
            .and_then(|s| s.steps.get(step))
            .map(|s| (s.outline.id.clone(), s.outline.title.clone()))
            .unwrap_or_default()
    }

    /// Asks a question as lines and sends the answer; `Some`: the conductor
    /// ended meanwhile. At the end of input the conductor is told that no
    /// answer can come.
    async fn answer(&mut self, link: &mut Link, id: u64, question: Question) -> Option<Ending> {
        match self.answer_lines(link, id, question).await {
            Ok(()) => None,
            Err(Some(ending)) => Some(ending),
            Err(None) => {
                let _ = link.inputs.send(drive::Input::Answer { id, answer: Answer::Unanswerable });
                None
            }
        }
    }

    async fn answer_lines(&mut self, link: &mut Link, id: u64, question: Question) -> Result<(), Option<Ending>> {
        let answer = match question {
            Question::Checklist { step } => return self.checklist(link, id, step).await,
            Question::Confirm { step, command, typed, mismatch, .. } => {
                match (&mismatch, &typed) {
                    (Some(text), Some(expected)) => self.out.line(&format!("  `{text}` does not match `{expected}`")),
                    _ => self.out.line(&format!("  will run:\n    {}", command.replace('\n', "\n    "))),
                }
                self.shown_command = Some(step);
                match typed {
                    Some(expected) => {
                        let prompt = format!("  Type `{expected}` to run it, or s REASON to skip it: ");
                        self.ask_until(link, &prompt, |word, note| match word {
                            "" => None,
                            "s" | "skip" => with_reason(note, |reason| Answer::Decline { reason }),
                            typed => Some(Answer::Typed(typed.to_string())),
                        })
                        .await?
                    }
                    None => {
                        self.ask_until(link, "  Run it? [y]es / [s]kip REASON: ", |word, note| match word {
                            "y" | "yes" => Some(Answer::Yes),
                            "s" | "skip" | "n" | "no" => with_reason(note, |reason| Answer::Decline { reason }),
                            _ => None,
                        })
                        .await?
                    }
                }
            }
            Question::Pick { what, rows, default, .. } => {
                let noun = if what == PickWhat::Backup { "backup" } else { "tag" };
                let prompt = match default {
                    Some(row) => format!("  Which {noun}? number [{}]: ", row + 1),
                    None => format!("  Which {noun}? number: "),
                };
                loop {
                    let (word, _) = self.choice(link, &prompt).await?;
                    let number = if word.is_empty() { default.map(|row| row + 1) } else { word.parse::<usize>().ok() };
                    match number.filter(|n| (1..=rows.len()).contains(n)) {
                        Some(number) => break Answer::Pick(number - 1),
                        None => self.out.line(&format!("  choose 1 to {}", rows.len())),
                    }
                }
            }
            Question::Manual { .. } => {
                let prompt = "  Done? [y]es / [s]kip REASON / [a]bort (words after y or a are kept as a note): ";
                self.ask_until(link, prompt, |word, note| match word {
                    "y" | "yes" => Some(Answer::Done { note: (!note.is_empty()).then_some(note) }),
                    "s" | "skip" => with_reason(note, |reason| Answer::Skip { reason }),
                    "a" | "abort" => Some(Answer::Abort { note: (!note.is_empty()).then_some(note) }),
                    _ => None,
                })
                .await?
            }
            Question::Interrupted { step, still_running } => {
                let (id_text, title) = self.step_title(step);
                self.out.line(&format!("\nStep `{id_text}` ({title}) was interrupted before it finished."));
                if !still_running.is_empty() {
                    self.out.line(
                        "  Still running from the interrupted attempt (running the step again stops them first):",
                    );
                    for process in &still_running {
                        self.out.line(&format!("    {process}"));
                    }
                }
                let prompt = "  Run it again? [Y]es / mark [d]one NOTE / [s]kip REASON: ";
                self.ask_until(link, prompt, |word, note| match word {
                    "" | "y" | "yes" | "r" => Some(Answer::Again),
                    "d" | "done" => with_reason(note, |note| Answer::MarkDone { note }),
                    "s" | "skip" => with_reason(note, |reason| Answer::Skip { reason }),
                    _ => None,
                })
                .await?
            }
            Question::Failed { .. } => {
                let prompt = "  [r]etry / [s]kip REASON / [a]bort the drill (teardown steps still run): ";
                self.ask_until(link, prompt, |word, note| match word {
                    "r" | "retry" | "y" | "yes" => Some(Answer::Again),
                    "s" | "skip" => with_reason(note, |reason| Answer::Skip { reason }),
                    "a" | "abort" => Some(Answer::Abort { note: None }),
                    _ => None,
                })
                .await?
            }
        };
        let _ = link.inputs.send(drive::Input::Answer { id, answer });
        Ok(())
    }

    /// Asks until `parse` makes an answer of the first word (lowercased)
    /// and the rest of the line (a note). An empty line, or a skip without its
    /// reason, asks again: no single key skips a step.
    async fn ask_until(
        &mut self,
        link: &mut Link,
        prompt: &str,
        parse: impl Fn(&str, String) -> Option<Answer>,
    ) -> Result<Answer, Option<Ending>> {
        loop {
            let (word, note) = self.choice(link, prompt).await?;
            let reasonless = note.is_empty() && matches!(word.as_str(), "s" | "skip" | "n" | "no" | "d" | "done" | "f");
            if let Some(answer) = parse(&word, note) {
                return Ok(answer);
            }
            if reasonless {
                self.out.line(&format!("  say why, after the answer: {word} REASON"));
            }
        }
    }

    /// A checklist, item by item: ticks go to the conductor as they are
    /// answered; a required item answered "no" makes the step fail.
    async fn checklist(&mut self, link: &mut Link, id: u64, step: usize) -> Result<(), Option<Ending>> {
        let inputs = link.inputs.clone();
        let send = |answer: Answer| {
            let _ = inputs.send(drive::Input::Answer { id, answer });
        };
        let Some(crate::runbook::Action::Checklist(list)) = self.runbook.steps.get(step).map(|s| s.action.clone())
        else {
            return Ok(());
        };
        for (index, item) in list.items.iter().enumerate() {
            let ticked = self.state.as_ref().and_then(|s| s.steps.get(step)).is_some_and(|s| s.ticked(index));
            if ticked {
                self.out.line(&format!("  [x] {}", item.text));
                continue;
            }
            let optional = if item.required { "" } else { " (optional)" };
            let prompt = format!("  [ ] {}{optional}: done? [y]es / [n]o / [f]ailed NOTE / [s]kip REASON: ", item.text);
            loop {
                let (word, note) = self.choice(link, &prompt).await?;
                match (word.as_str(), note.is_empty()) {
                    ("y" | "yes", _) => send(Answer::Tick { item: index, ticked: true }),
                    // Not done: a required item left unticked fails the checklist.
                    ("n" | "no", _) => {}
                    ("f" | "failed", false) => send(Answer::ItemFailed { item: index, note: note.clone() }),
                    ("s" | "skip", false) => {
                        send(Answer::Skip { reason: note });
                        return Ok(());
                    }
                    ("f" | "failed" | "s" | "skip", true) => {
                        self.out.line(&format!("  say why, after the answer: {word} REASON"));
                        continue;
                    }
                    _ => continue,
                }
                // Words after yes or no are a note on the item (after failed, its reason).
                if !note.is_empty() && !matches!(word.as_str(), "f" | "failed") {
                    let request = Request::Note { step: Some(step), item: Some(index), text: note };
                    let _ = inputs.send(drive::Input::Request(request));
                }
                break;
            }
        }
        send(Answer::Done { note: None });
        Ok(())
    }

    /// Asks and splits the answer into its first word (lowercased) and the
    /// rest (a note). `Err`: no answer can come (`Some`: the conductor ended).
    async fn choice(&mut self, link: &mut Link, prompt: &str) -> Result<(String, String), Option<Ending>> {
        self.out.prompt(prompt);
        loop {
            let line = tokio::select! {
                line = self.input.line() => match line {
                    Some(line) => Line::Text(line),
                    None => Line::Eof,
                },
                update = link.updates.recv() => match update {
                    Some(Update::Ended(ending)) => Line::Ended(ending),
                    Some(other) => {
                        self.show(other);
                        continue;
                    }
                    None => Line::Eof,
                },
            };
            return match line {
                Line::Text(line) => {
                    if !self.input.is_terminal {
                        self.out.line(&line);
                    }
                    let line = line.trim();
                    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                    Ok((word.to_lowercase(), rest.trim().to_string()))
                }
                Line::Eof => {
                    self.out.line("");
                    Err(None)
                }
                Line::Ended(ending) => Err(Some(ending)),
            };
        }
    }
}

/// An answer that needs a reason, when one was given.
fn with_reason(note: String, answer: impl FnOnce(String) -> Answer) -> Option<Answer> {
    (!note.trim().is_empty()).then(|| answer(note))
}

/// Writes to stdout, never panicking when it is gone (SIGHUP, closed pipe).
struct Printer {
    color: bool,
}

impl Printer {
    fn new() -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Printer { color }
    }

    fn write(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    fn line(&self, text: &str) {
        self.write(&format!("{text}\n"));
    }

    fn prompt(&self, text: &str) {
        self.write(text);
    }

    fn heading(&self, text: &str) {
        if self.color {
            self.write(&format!("\n\x1b[1m{text}\x1b[0m\n"));
        } else {
            self.write(&format!("\n{text}\n"));
        }
    }

    /// A command's output, each line behind the stream's gutter.
    fn output_lines(&self, stream: OutputStream, lines: &Lines) {
        if self.color {
            return self.output(stream, lines);
        }
        let gutter = Self::gutter(stream, false);
        // Sized once, and each line copied with its '\n': a flood is
        // millions of short lines, and this is a front-end's only work on it.
        let mut text = String::with_capacity(lines.text_len() + lines.len() * gutter.len());
        for line in lines.terminated() {
            text.push_str(gutter);
            text.push_str(line);
        }
        self.write(&text);
    }

    fn gutter(stream: OutputStream, color: bool) -> &'static str {
        match (stream, color) {
            (OutputStream::Stdout, false) => "  | ",
            (OutputStream::Stderr, false) => "  ! ",
            (OutputStream::Stdout, true) => "  \x1b[2m│\x1b[0m ",
            (OutputStream::Stderr, true) => "  \x1b[31m│\x1b[0m ",
        }
    }

    fn output<S: AsRef<str>>(&self, stream: OutputStream, lines: impl IntoIterator<Item = S> + Clone) {
        let gutter = Self::gutter(stream, self.color);
        // Sized once: a batch is up to 4,096 lines, and growing the buffer
        // by doubling copied it seven times over (and mapped fresh pages).
        let per_line = gutter.len() + if self.color { "\x1b[0m".len() } else { 0 } + 1;
        let size = lines.clone().into_iter().map(|line| line.as_ref().len() + per_line).sum();
        let mut text = String::with_capacity(size);
        for line in lines {
            text.push_str(gutter);
            text.push_str(line.as_ref());
            if self.color {
                text.push_str("\x1b[0m");
            }
            text.push('\n');
        }
        self.write(&text);
    }
}
