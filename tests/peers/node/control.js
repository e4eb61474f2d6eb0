"use strict";
// The control protocol of the WebRTC test peers (docs/interop.md, "Control protocol") over
// stdin/stdout, one JSON object a line, for a WebRTC stack that runs in Node.
//
// A stack's script (node_datachannel_peer.js, werift_peer.js) builds an adapter with the verbs
// below and calls run(); everything the stacks share lives here: command dispatch and answers,
// channels addressed by label, echo, the byte sink of expect_bytes and the paced sender of
// send_bytes. End of stdin closes the connection and the process exits with status 0.
//
// adapter (all may be async):
//   createOffer() / createAnswer()   -> {type, sdp} after setLocalDescription (candidates inside
//                                       when the configuration says trickle: false)
//   setRemote({type, sdp}), addCandidate(init | null)
//   createChannel(label, options)    -> a channel handle (below)
//   states()                         -> {connectionState, iceConnectionState, iceGatheringState,
//                                        signalingState}
//   close()
// channel handle: info() -> {label, id, protocol, ordered, negotiated, maxRetransmits,
//   maxPacketLifeTime}; send(string | Buffer); bufferedAmount(); setLowThreshold(n);
//   onLow(callback); close(). The adapter reports through the Peer: candidate(init | null),
//   stateChanged(event), remoteChannel(handle), and per channel opened(handle), closed(handle),
//   message(handle, string | Buffer).

const crypto = require("crypto");
const readline = require("readline");

// send_bytes keeps at most this much queued in the stack and waits for the low-water event.
const HIGH_WATER = 1 << 20;
const LOW_WATER = 256 << 10;
// After the end of stdin, how long the stack may take to close before the process exits anyway.
const CLOSE_GRACE_MS = 3000;

function emit(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

function log(level, text) {
  emit({ type: "log", level, text: String(text) });
}

class Channel {
  constructor(handle, echo) {
    this.handle = handle;
    this.echo = echo;
    this.sink = null;
    this.wasOpened = false;
  }

  onMessage(data) {
    const label = this.handle.info().label;
    if (this.sink !== null && typeof data !== "string") {
      const sink = this.sink;
      if (sink.received + data.length > sink.expected) {
        this.sink = null;
        log("error", `${label}: more bytes than expected`);
        return;
      }
      sink.hash.update(data);
      sink.received += data.length;
      if (sink.received === sink.expected) {
        this.sink = null;
        emit({ type: "transfer", label, bytes: sink.received, sha256: sink.hash.digest("hex") });
      }
      return;
    }
    if (this.echo) {
      this.handle.send(data);
    } else if (typeof data === "string") {
      emit({ type: "message", label, text: data });
    } else {
      emit({ type: "message", label, binary: Buffer.from(data).toString("base64") });
    }
  }

  async sendBytes(nbytes, chunk) {
    const data = crypto.randomBytes(nbytes);
    const handle = this.handle;
    handle.setLowThreshold(LOW_WATER);
    let wake = null;
    handle.onLow(() => {
      if (wake !== null) {
        const resolve = wake;
        wake = null;
        resolve();
      }
    });
    for (let offset = 0; offset < nbytes; offset += chunk) {
      while (handle.bufferedAmount() > HIGH_WATER) {
        await new Promise((resolve) => {
          wake = resolve;
          // The low event can race the check: look again now and then.
          setTimeout(resolve, 50);
        });
      }
      handle.send(data.subarray(offset, Math.min(offset + chunk, nbytes)));
    }
    return { sha256: crypto.createHash("sha256").update(data).digest("hex"), bytes: nbytes };
  }
}

class Peer {
  constructor(config) {
    this.config = config;
    this.adapter = null;
    this.channels = new Map();
  }

  // -- reports from the adapter -----------------------------------------------------------

  candidate(init) {
    emit({ type: "candidate", candidate: init });
  }

  async stateChanged(event) {
    emit({ type: "state", event, ...(await this.adapter.states()) });
  }

  remoteChannel(handle) {
    const channel = this.adopt(handle, this.config.echo);
    emit({ type: "datachannel", ...handle.info() });
    return channel;
  }

  opened(handle) {
    const channel = this.channels.get(handle.info().label);
    if (channel === undefined || channel.wasOpened) {
      return;
    }
    channel.wasOpened = true;
    emit({ type: "open", ...handle.info() });
  }

  closed(handle) {
    emit({ type: "close", label: handle.info().label });
  }

  message(handle, data) {
    const channel = this.channels.get(handle.info().label);
    if (channel !== undefined) {
      channel.onMessage(data);
    }
  }

  // -- commands ---------------------------------------------------------------------------

  adopt(handle, echo) {
    const label = handle.info().label;
    if (this.channels.has(label)) {
      throw new Error(`channels are addressed by label; ${label} is taken`);
    }
    const channel = new Channel(handle, echo);
    this.channels.set(label, channel);
    return channel;
  }

  channel(label) {
    const channel = this.channels.get(label);
    if (channel === undefined) {
      throw new Error(`no channel ${label}`);
    }
    return channel;
  }

  async handle(command) {
    const adapter = this.adapter;
    switch (command.type) {
      case "create_offer":
        return await adapter.createOffer();
      case "create_answer":
        return await adapter.createAnswer();
      case "set_remote":
        await adapter.setRemote(command.description);
        return null;
      case "add_candidate":
        await adapter.addCandidate(command.candidate);
        return null;
      case "create_channel": {
        const handle = await adapter.createChannel(command.label, command.options || {});
        this.adopt(handle, Boolean(command.echo));
        return handle.info();
      }
      case "send": {
        const handle = this.channel(command.label).handle;
        handle.send("text" in command ? command.text : Buffer.from(command.binary, "base64"));
        return null;
      }
      case "set_echo":
        this.channel(command.label).echo = Boolean(command.echo);
        return null;
      case "close_channel":
        this.channel(command.label).handle.close();
        return null;
      case "expect_bytes":
        this.channel(command.label).sink = {
          expected: command.nbytes,
          received: 0,
          hash: crypto.createHash("sha256"),
        };
        return null;
      case "send_bytes":
        return await this.channel(command.label).sendBytes(command.nbytes, command.chunk);
      case "states":
        return await adapter.states();
      case "close":
        await adapter.close();
        return null;
      default:
        throw new Error(`unknown command ${command.type}`);
    }
  }
}

// Start the peer: makeAdapter(peer, config) returns the stack's adapter. finish() runs after
// the connection closed at end of stdin (a stack's global cleanup), before the exit.
async function run(makeAdapter, finish) {
  const config = JSON.parse(process.argv[2] || "{}");
  const peer = new Peer(config);
  peer.adapter = await makeAdapter(peer, config);
  // The test reads stdout and stderr; when it stops (it died, or closed the pipes), a write
  // fails with EPIPE. Unhandled, that error became an uncaught exception whose handler wrote
  // again: a busy loop at 100 % CPU that never let the event loop see the end of stdin, so the
  // orphan spun for ever (seen with werift). Nobody is listening any more: exit at once.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", () => process.exit(1));
  }
  process.on("uncaughtException", (error) => log("error", `uncaught: ${error.stack || error}`));
  process.on("unhandledRejection", (error) => log("error", `unhandled: ${error.stack || error}`));
  emit({ type: "hello" });
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  // Commands run in order, each to its end, like the browser page's.
  let queue = Promise.resolve();
  lines.on("line", (line) => {
    if (!line.trim()) {
      return;
    }
    queue = queue.then(async () => {
      let command;
      try {
        command = JSON.parse(line);
      } catch (error) {
        log("error", `not JSON: ${line.slice(0, 200)}`);
        return;
      }
      try {
        const value = await peer.handle(command);
        emit({ type: "result", id: command.id, value: value === undefined ? null : value });
      } catch (error) {
        emit({ type: "error", id: command.id, error: `${error.name}: ${error.message}` });
      }
    });
  });
  lines.on("close", () => {
    // A stack whose close() never settles must not outlive the test that started it (status 3
    // says so; the harness also kills a peer that lingers).
    setTimeout(() => {
      log("error", `close did not settle within ${CLOSE_GRACE_MS} ms`);
      process.exit(3);
    }, CLOSE_GRACE_MS).unref();
    queue.then(async () => {
      try {
        await peer.adapter.close();
      } catch (error) {
        log("error", `close: ${error}`);
      }
      emit({ type: "closed" });
      if (finish) {
        await finish();
      }
      process.exit(0);
    });
  });
}

module.exports = { emit, log, run };
