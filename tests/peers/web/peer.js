// A WebRTC peer in the browser, remote-controlled by a test over a WebSocket.
//
// The page is opened by tests/peers/chromium.py as peer.html?ws=<url>. It connects to that
// WebSocket, waits for a "configure" command, creates one RTCPeerConnection and then carries out
// the commands of the control protocol shared with tests/peers/aiortc_pc_peer.py (documented in
// docs/interop.md). Every command carries an "id"; the page answers {"type": "result", "id",
// "value"} or {"type": "error", "id", "error"}. Everything else it says is an event: candidates
// (candidate.toJSON(), null at end-of-candidates), state snapshots, data channels, messages,
// finished transfers and console output.

"use strict";

const params = new URLSearchParams(location.search);
const ws = new WebSocket(params.get("ws"));
let pc = null;
let config = {};
// label -> {channel, echo, sink: null | {expected, received, buffer}}
const channels = new Map();

function emit(message) {
  if (ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(message));
  }
}

// Console output and uncaught errors go to the test, which attaches them to failures.
for (const level of ["log", "info", "warn", "error"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    original(...args);
    emit({ type: "log", level, text: args.map(String).join(" ") });
  };
}
window.addEventListener("error", (event) => {
  emit({ type: "log", level: "error", text: `uncaught: ${event.message}` });
});
window.addEventListener("unhandledrejection", (event) => {
  emit({ type: "log", level: "error", text: `unhandled rejection: ${event.reason}` });
});

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    bytes[i] = raw.charCodeAt(i);
  }
  return bytes;
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function emitStates(event) {
  emit({
    type: "state",
    event,
    connectionState: pc.connectionState,
    iceConnectionState: pc.iceConnectionState,
    iceGatheringState: pc.iceGatheringState,
    signalingState: pc.signalingState,
  });
}

function channelInfo(channel) {
  return {
    label: channel.label,
    id: channel.id,
    protocol: channel.protocol,
    ordered: channel.ordered,
    negotiated: channel.negotiated,
    maxRetransmits: channel.maxRetransmits,
    maxPacketLifeTime: channel.maxPacketLifeTime,
  };
}

function adopt(channel, echo) {
  if (channels.has(channel.label)) {
    throw new Error(`the test addresses channels by label; ${channel.label} is taken`);
  }
  const entry = { channel, echo, sink: null };
  channels.set(channel.label, entry);
  channel.binaryType = "arraybuffer";
  channel.onopen = () => emit({ type: "open", ...channelInfo(channel) });
  channel.onclose = () => emit({ type: "close", label: channel.label });
  channel.onerror = (event) => {
    emit({ type: "log", level: "error", text: `channel ${channel.label}: ${event.error}` });
  };
  channel.onmessage = (event) => onMessage(entry, event.data);
  return entry;
}

function onMessage(entry, data) {
  const label = entry.channel.label;
  if (entry.sink !== null && typeof data !== "string") {
    const chunk = new Uint8Array(data);
    const sink = entry.sink;
    if (sink.received + chunk.length > sink.expected) {
      entry.sink = null;
      emit({ type: "log", level: "error", text: `channel ${label}: more bytes than expected` });
      return;
    }
    sink.buffer.set(chunk, sink.received);
    sink.received += chunk.length;
    if (sink.received === sink.expected) {
      entry.sink = null;
      sha256Hex(sink.buffer).then((hex) => {
        emit({ type: "transfer", label, bytes: sink.received, sha256: hex });
      });
    }
    return;
  }
  if (entry.echo) {
    entry.channel.send(data);
    return;
  }
  if (typeof data === "string") {
    emit({ type: "message", label, text: data });
  } else {
    emit({ type: "message", label, binary: toBase64(new Uint8Array(data)) });
  }
}

function requireChannel(label) {
  const entry = channels.get(label);
  if (entry === undefined) {
    throw new Error(`no data channel labelled ${label}`);
  }
  return entry;
}

function gatheringComplete() {
  if (pc.iceGatheringState === "complete") {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        resolve();
      }
    });
  });
}

async function localDescription() {
  if (config.trickle === false) {
    await gatheringComplete();
  }
  return pc.localDescription.toJSON();
}

function waitBufferedLow(channel) {
  return new Promise((resolve) => {
    channel.addEventListener("bufferedamountlow", resolve, { once: true });
  });
}

async function sendBytes(entry, nbytes, chunkSize) {
  const channel = entry.channel;
  const data = new Uint8Array(nbytes);
  // getRandomValues fills at most 65536 bytes per call.
  for (let i = 0; i < nbytes; i += 65536) {
    crypto.getRandomValues(data.subarray(i, Math.min(i + 65536, nbytes)));
  }
  const digest = await sha256Hex(data);
  // Chromium closes a channel whose send buffer passes 16 MiB: stay far below.
  channel.bufferedAmountLowThreshold = 256 * 1024;
  for (let offset = 0; offset < nbytes; offset += chunkSize) {
    while (channel.bufferedAmount > 1024 * 1024) {
      await waitBufferedLow(channel);
    }
    channel.send(data.subarray(offset, Math.min(offset + chunkSize, nbytes)));
  }
  return { sha256: digest, bytes: nbytes };
}

function configure(options) {
  config = options;
  pc = new RTCPeerConnection(options.configuration || {});
  pc.onicecandidate = (event) => {
    emit({ type: "candidate", candidate: event.candidate ? event.candidate.toJSON() : null });
  };
  pc.onconnectionstatechange = () => emitStates("connectionstatechange");
  pc.oniceconnectionstatechange = () => emitStates("iceconnectionstatechange");
  pc.onicegatheringstatechange = () => emitStates("icegatheringstatechange");
  pc.onsignalingstatechange = () => emitStates("signalingstatechange");
  pc.ondatachannel = (event) => {
    adopt(event.channel, Boolean(config.echo));
    emit({ type: "datachannel", ...channelInfo(event.channel) });
  };
  return { userAgent: navigator.userAgent };
}

const commands = {
  configure: (m) => configure(m.config || {}),
  async create_offer() {
    await pc.setLocalDescription(await pc.createOffer());
    return localDescription();
  },
  async create_answer() {
    await pc.setLocalDescription(await pc.createAnswer());
    return localDescription();
  },
  async set_remote(m) {
    await pc.setRemoteDescription(m.description);
    return null;
  },
  async add_candidate(m) {
    // null means end-of-candidates (an empty init dict says the same to the browser).
    await pc.addIceCandidate(m.candidate === null ? {} : m.candidate);
    return null;
  },
  create_channel(m) {
    const channel = pc.createDataChannel(m.label, m.options || {});
    adopt(channel, Boolean(m.echo));
    return channelInfo(channel);
  },
  send(m) {
    const entry = requireChannel(m.label);
    entry.channel.send(m.text !== undefined ? m.text : fromBase64(m.binary));
    return null;
  },
  set_echo(m) {
    requireChannel(m.label).echo = Boolean(m.echo);
    return null;
  },
  close_channel(m) {
    requireChannel(m.label).channel.close();
    return null;
  },
  expect_bytes(m) {
    const entry = requireChannel(m.label);
    entry.sink = { expected: m.nbytes, received: 0, buffer: new Uint8Array(m.nbytes) };
    return null;
  },
  send_bytes(m) {
    return sendBytes(requireChannel(m.label), m.nbytes, m.chunk || 16384);
  },
  states() {
    return {
      connectionState: pc.connectionState,
      iceConnectionState: pc.iceConnectionState,
      iceGatheringState: pc.iceGatheringState,
      signalingState: pc.signalingState,
    };
  },
  close() {
    pc.close();
    return null;
  },
  // Chromium <-> Chromium inside this page, for the setup benchmark (benchmarks/
  // bench_chromium_setup.py): two RTCPeerConnections with this page's configuration, a data
  // channel, trickled candidates handed over in the page; the milliseconds from createOffer to
  // the channel open on both sides. Both connections are closed before the result is sent.
  async local_pair_setup() {
    const configuration = config.configuration || {};
    const a = new RTCPeerConnection(configuration);
    const b = new RTCPeerConnection(configuration);
    try {
      const opened = (channel) =>
        new Promise((resolve) => {
          if (channel.readyState === "open") resolve();
          else channel.addEventListener("open", () => resolve(), { once: true });
        });
      const remoteOpen = new Promise((resolve) => {
        b.ondatachannel = (event) => opened(event.channel).then(resolve);
      });
      a.onicecandidate = (event) => event.candidate && b.addIceCandidate(event.candidate);
      b.onicecandidate = (event) => event.candidate && a.addIceCandidate(event.candidate);
      const channel = a.createDataChannel("bench");
      const start = performance.now();
      await a.setLocalDescription(await a.createOffer());
      await b.setRemoteDescription(a.localDescription);
      await b.setLocalDescription(await b.createAnswer());
      await a.setRemoteDescription(b.localDescription);
      await Promise.all([opened(channel), remoteOpen]);
      return performance.now() - start;
    } finally {
      a.close();
      b.close();
    }
  },
};

ws.onmessage = async (event) => {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch (error) {
    emit({ type: "log", level: "error", text: `bad control message: ${error}` });
    return;
  }
  const handler = commands[message.type];
  try {
    if (handler === undefined) {
      throw new Error(`unknown command ${message.type}`);
    }
    if (message.type !== "configure" && pc === null) {
      throw new Error("configure first");
    }
    const value = await handler(message);
    emit({ type: "result", id: message.id, value: value === undefined ? null : value });
  } catch (error) {
    emit({ type: "error", id: message.id, error: `${error.name}: ${error.message}` });
  }
};
ws.onopen = () => emit({ type: "hello" });
