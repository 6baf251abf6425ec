// Loads a profile into speedscope (its dist/release page) in headless Chromium and writes
// what speedscope made of it, for tests/tools/speedscope_test.cpp:
//
//   node load_in_speedscope.mjs --speedscope DIR --profile FILE --out OUT.json
//                               [--chromium PATH] [--timeout-ms N]
//
// DIR is speedscope's dist/release folder. The profile is handed over the way
// speedscope's own command line does (#localProfilePath=, a script that calls
// speedscope.loadFileFromBase64). Once imported, the page's own export (Ctrl+S, the
// "Export" button: a speedscope-format JSON of the imported profiles, built from its
// in-memory model) is caught where it becomes a download (URL.createObjectURL), so the
// result is speedscope's state, not a re-implementation of its importer.
//
// OUT.json: {"title", "console": [{"type", "text"}], "exceptions": [..], "dialogs": [..],
// "export": <speedscope file, or null>}. Exit 0 when OUT.json was written (even if the
// import failed: the test reads why), 2 on bad arguments, 1 when Chromium could not be
// driven. The browser talks the DevTools protocol over pipes (--remote-debugging-pipe:
// fd 3 in, fd 4 out, messages ended by NUL), so no WebSocket client is needed.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

function parseArgs(argv) {
  const opts = { chromium: '/usr/bin/chromium', timeoutMs: 60000 };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (value === undefined) return null;
    if (key === '--speedscope') opts.speedscope = value;
    else if (key === '--profile') opts.profile = value;
    else if (key === '--out') opts.out = value;
    else if (key === '--chromium') opts.chromium = value;
    else if (key === '--timeout-ms') opts.timeoutMs = Number(value);
    else return null;
  }
  return opts.speedscope && opts.profile && opts.out ? opts : null;
}

// One DevTools protocol connection over the browser's pipes.
class Cdp {
  constructor(child) {
    this.out = child.stdio[3];
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = [];
    let buffered = '';
    child.stdio[4].on('data', chunk => {
      buffered += chunk.toString('utf8');
      let end;
      while ((end = buffered.indexOf('\0')) >= 0) {
        const message = JSON.parse(buffered.slice(0, end));
        buffered = buffered.slice(end + 1);
        if (message.id !== undefined && this.pending.has(message.id)) {
          const { resolve, reject } = this.pending.get(message.id);
          this.pending.delete(message.id);
          if (message.error) reject(new Error(`${message.error.message} (${message.error.code})`));
          else resolve(message.result);
        } else if (message.method) {
          for (const listener of this.listeners) listener(message);
        }
      }
    });
  }
  send(method, params = {}, sessionId = undefined) {
    const id = this.nextId++;
    const message = { id, method, params };
    if (sessionId) message.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.out.write(JSON.stringify(message) + '\0');
    });
  }
  on(listener) {
    this.listeners.push(listener);
  }
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// Text of a console call's arguments, as DevTools would print them.
function consoleText(args) {
  return args
    .map(a => (a.value !== undefined ? (typeof a.value === 'string' ? a.value : JSON.stringify(a.value)) : a.description ?? a.type))
    .join(' ');
}

// Installed before the page's own script: keeps each Blob that becomes an object URL
// (speedscope's export) and turns the download click into nothing.
const kHook = `(() => {
  window.__strobeBlobs = [];
  const create = URL.createObjectURL.bind(URL);
  URL.createObjectURL = blob => { window.__strobeBlobs.push(blob); return create(blob); };
  HTMLAnchorElement.prototype.click = function () {};
})();`;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!opts) {
    process.stderr.write('usage: node load_in_speedscope.mjs --speedscope DIR --profile FILE --out OUT.json [--chromium PATH] [--timeout-ms N]\n');
    process.exit(2);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'strobe-speedscope-'));
  const loader = path.join(work, 'load-profile.js');
  const profileName = path.basename(opts.profile);
  fs.writeFileSync(loader, `speedscope.loadFileFromBase64(${JSON.stringify(profileName)}, ${JSON.stringify(fs.readFileSync(opts.profile).toString('base64'))})`);
  const page = pathToFileURL(path.join(path.resolve(opts.speedscope), 'index.html')).href;
  // speedscope prefixes the path with file:/// itself.
  const url = `${page}#localProfilePath=${encodeURIComponent(loader.replace(/^\/+/, ''))}`;

  const child = spawn(opts.chromium, [
    '--headless', '--no-sandbox', '--remote-debugging-pipe', `--user-data-dir=${path.join(work, 'profile')}`,
    '--no-first-run', '--no-default-browser-check', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-extensions', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
    '--window-size=1400,900', 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let browserLog = '';
  child.stderr.on('data', d => { browserLog += d.toString('utf8'); });
  const killer = setTimeout(() => {
    process.stderr.write(`speedscope load timed out after ${opts.timeoutMs} ms\n${browserLog.slice(-4000)}`);
    child.kill('SIGKILL');
    process.exit(1);
  }, opts.timeoutMs);

  const result = { title: '', console: [], exceptions: [], dialogs: [], export: null };
  try {
    const cdp = new Cdp(child);
    const { targetInfos } = await cdp.send('Target.getTargets');
    const target = targetInfos.find(t => t.type === 'page');
    if (!target) throw new Error('Chromium opened no page');
    const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: target.targetId, flatten: true });
    cdp.on(m => {
      if (m.sessionId !== sessionId) return;
      if (m.method === 'Runtime.consoleAPICalled') {
        result.console.push({ type: m.params.type, text: consoleText(m.params.args) });
      } else if (m.method === 'Runtime.exceptionThrown') {
        const d = m.params.exceptionDetails;
        result.exceptions.push(d.exception?.description ?? d.text);
      } else if (m.method === 'Log.entryAdded') {
        result.console.push({ type: `log.${m.params.entry.level}`, text: m.params.entry.text });
      } else if (m.method === 'Page.javascriptDialogOpening') {
        result.dialogs.push(m.params.message);
        cdp.send('Page.handleJavaScriptDialog', { accept: true }, sessionId).catch(() => {});
      }
    });
    const evaluate = async expression => {
      const r = await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
      if (r.exceptionDetails) throw new Error(`${expression}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
      return r.result.value;
    };
    await cdp.send('Runtime.enable', {}, sessionId);
    await cdp.send('Log.enable', {}, sessionId);
    await cdp.send('Page.enable', {}, sessionId);
    await cdp.send('Page.addScriptToEvaluateOnNewDocument', { source: kHook }, sessionId);
    await cdp.send('Page.navigate', { url }, sessionId);

    // Imported: speedscope titles the page "<name> - speedscope". Then ask for its export
    // until the page has the profile group to give (it is set just after the title).
    const deadline = Date.now() + opts.timeoutMs - 5000;
    const failed = () => result.dialogs.length > 0 || result.exceptions.length > 0 ||
        result.console.some(c => c.text.startsWith('Failed to load format'));
    while (Date.now() < deadline && !failed()) {
      result.title = await evaluate('document.title');
      if (result.title.endsWith(' - speedscope')) {
        await evaluate(`window.dispatchEvent(new KeyboardEvent('keydown', {key: 's', code: 'KeyS', ctrlKey: true, bubbles: true}))`);
        const text = await evaluate('window.__strobeBlobs.length ? window.__strobeBlobs[window.__strobeBlobs.length - 1].text() : null');
        if (text !== null) {
          result.export = JSON.parse(text);
          break;
        }
      }
      await sleep(100);
    }
    await cdp.send('Browser.close').catch(() => {});
  } finally {
    clearTimeout(killer);
    // The profile folder goes once the browser (closed over the protocol above, so its
    // helper processes end with it) has stopped writing into it; a folder that still
    // cannot be removed is left behind, not a failure of the import.
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise(r => child.once('exit', r));
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(kill);
    try {
      fs.rmSync(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    } catch (e) {
      process.stderr.write(`(could not remove ${work}: ${e.message})\n`);
    }
  }
  fs.writeFileSync(opts.out, JSON.stringify(result));
}

main().catch(e => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
