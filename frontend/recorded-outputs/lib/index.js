// Cells that ran while no page had their notebook open: show what they printed meanwhile, then
// follow them live to their end. nbflask's kernel host records every run (GET
// /api/kernels/<id>/runs) and streams a run's changes as server-sent events; stock JupyterLab
// ignores kernel messages for requests it did not send, so without this a reopened page shows
// a running cell as idle and empty until it is saved.
import { INotebookTracker } from '@jupyterlab/notebook';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

const RUNS = 'api/kernels';

function request(path, init) {
  const settings = ServerConnection.makeSettings();
  return ServerConnection.makeRequest(URLExt.join(settings.baseUrl, path), init || {}, settings);
}

// The first event (`run`) carries the whole run as it stands, each later one (`change`) what
// changed since the one before: applied in order, they rebuild the run exactly, however late
// the page subscribed. `done` ends the stream.
async function* runEvents(kernelId, runId) {
  const response = await request(URLExt.join(RUNS, kernelId, 'runs', runId, 'events'));
  if (!response.ok || !response.body) {
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = {};
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) {
          fields[line.slice(0, colon)] = (fields[line.slice(0, colon)] || '') + line.slice(colon + 1).trim();
        }
      }
      if (fields.event === 'run' || fields.event === 'change') {
        yield { kind: fields.event, data: JSON.parse(fields.data) };
      } else if (fields.event === 'done') {
        return;
      }
    }
  }
}

// A `change` applied to the run it follows: `count` outputs now, those listed replaced whole
// or, for a stream, kept to `keep` characters and then `text` appended.
function applyChange(run, change) {
  const outputs = run.outputs.slice(0, change.count);
  for (const entry of change.outputs) {
    if ('output' in entry) {
      outputs[entry.index] = entry.output;
    } else {
      const stream = outputs[entry.index];
      outputs[entry.index] = { ...stream, text: stream.text.slice(0, entry.keep) + entry.text };
    }
  }
  const { outputs: _changed, count: _count, ...fields } = change;
  return { ...run, ...fields, outputs };
}

function show(cell, run) {
  const model = cell.model;
  model.outputs.fromJSON(run.outputs);
  if ('executionState' in model) {
    model.executionState = run.done ? 'idle' : 'running';
  }
  model.executionCount = run.done ? run.execution_count : null;
}

async function follow(panel, kernelId, run) {
  const cellOf = () => panel.content.widgets.find(cell => cell.model.id === run.cell_id);
  const edited = cell => run.code !== null && cell.model.sharedModel.getSource() !== run.code;
  let cell = cellOf();
  if (!cell || cell.model.type !== 'code' || edited(cell)) {
    return;
  }
  show(cell, run);
  for await (const event of runEvents(kernelId, run.id)) {
    cell = cellOf();
    if (!cell || edited(cell)) {
      return; // deleted or edited meanwhile: the page's own version wins
    }
    run = event.kind === 'run' ? event.data : applyChange(run, event.data);
    show(cell, run);
  }
  cell = cellOf();
  if (cell && !edited(cell)) {
    show(cell, { ...run, done: true });
  }
}

async function catchUp(panel, followed) {
  const kernel = panel.sessionContext.session?.kernel;
  if (!kernel) {
    return;
  }
  const response = await request(URLExt.join(RUNS, kernel.id, 'runs'));
  if (!response.ok) {
    return;
  }
  const newest = new Map();
  for (const run of await response.json()) {
    if (run.cell_id) {
      newest.set(run.cell_id, run);
    }
  }
  for (const run of newest.values()) {
    if (!run.done && !followed.has(run.id)) {
      followed.add(run.id);
      follow(panel, kernel.id, run).catch(error => console.warn('nbflask: following run', run.id, error));
    }
  }
}

const plugin = {
  id: '@nbflask/recorded-outputs:plugin',
  description: 'Shows the outputs of cells that ran while no page had the notebook open, then follows them live.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app, tracker) => {
    tracker.widgetAdded.connect((_, panel) => {
      const followed = new Set();
      const check = () => {
        panel.context.ready
          .then(() => catchUp(panel, followed))
          .catch(error => console.warn('nbflask: catching up on runs', error));
      };
      panel.sessionContext.ready.then(check);
      panel.sessionContext.kernelChanged.connect(check);
    });
  }
};

export default plugin;
