// The browser side of examples/browser_echo: one RTCPeerConnection, one data channel "echo",
// signalling over a WebSocket with the messages of trio_rtc.signaling (docs/signaling.md):
// {"description": {type, sdp}} and {"candidate": candidate.toJSON() | null}, plus
// {"log": text}, which the server prints (the page's own diagnosis when nothing connects).
// With ?selftest in the URL the page checks the echo by itself and sends a verdict line.

"use strict";

const logBox = document.getElementById("log");
const statusBox = document.getElementById("status");
const textInput = document.getElementById("text");
const sendButton = document.getElementById("send");
const bulkButton = document.getElementById("bulk");
const signalingUrl = document.body.dataset.signaling;
const connectTimeout = Number(document.body.dataset.connectTimeout) || 5;

function log(text) {
  const line = document.createElement("div");
  line.textContent = text;
  logBox.append(line);
  console.log(text);
}

// kind: "waiting" (grey), "connected" (green) or "failed" (red).
function setStatus(kind, text) {
  statusBox.className = kind === "waiting" ? "" : kind;
  statusBox.textContent = text;
}

const ws = new WebSocket(signalingUrl);
const pc = new RTCPeerConnection();
const channel = pc.createDataChannel("echo");
channel.binaryType = "arraybuffer";
let wsOpened = false;
let localCandidates = 0;
let remoteCandidates = 0;

// Echoed messages, in order, for whoever waits for them.
const inbox = [];
let wakeUp = null;

function nextMessage() {
  if (inbox.length > 0) {
    return Promise.resolve(inbox.shift());
  }
  return new Promise((resolve) => {
    wakeUp = () => {
      wakeUp = null;
      resolve(inbox.shift());
    };
  });
}

channel.onmessage = (event) => {
  inbox.push(event.data);
  if (wakeUp !== null) {
    wakeUp();
  }
};

function signal(message) {
  if (ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(message));
  }
}

pc.onicecandidate = (event) => {
  if (event.candidate && event.candidate.candidate) {
    localCandidates += 1;
    const { address, type, protocol } = event.candidate;
    log(`local candidate: ${type} ${address} ${protocol}`);
  }
  signal({ candidate: event.candidate ? event.candidate.toJSON() : null });
};
pc.onicegatheringstatechange = () => {
  log(`ICE gathering: ${pc.iceGatheringState} (${localCandidates} candidates)`);
};
pc.onconnectionstatechange = () => {
  log(`connection: ${pc.connectionState}`);
  if (pc.connectionState === "connected") {
    setStatus("connected", "connected to the trio_rtc server");
  } else if (pc.connectionState === "disconnected") {
    setStatus("waiting", "connection interrupted; waiting for it to come back…");
  } else if (pc.connectionState === "failed") {
    setStatus("failed", "the connection failed (see the log below and the server's output)");
  }
};

ws.onmessage = async (event) => {
  const message = JSON.parse(event.data);
  try {
    if (message.description) {
      await pc.setRemoteDescription(message.description);
    } else if ("candidate" in message) {
      if (message.candidate && message.candidate.candidate) {
        remoteCandidates += 1;
      }
      // null is end-of-candidates; browsers take an empty init for that.
      await pc.addIceCandidate(message.candidate || {});
    }
  } catch (error) {
    log(`signalling error: ${error}`);
  }
};

ws.onopen = async () => {
  wsOpened = true;
  log(`signalling connected to ${signalingUrl}`);
  await pc.setLocalDescription(await pc.createOffer());
  signal({ description: pc.localDescription.toJSON() });
};
ws.onclose = () => {
  log("signalling closed");
  if (!wsOpened) {
    setStatus("failed", `cannot reach the server at ${signalingUrl}: is server.py running?`);
  }
};

// Why nothing connected, in one line: the commonest causes first.
function diagnosis() {
  if (!wsOpened) {
    return `cannot reach the server at ${signalingUrl}: is server.py running?`;
  }
  const waited = `no connection after ${connectTimeout} s`;
  // A browser with no usable interface may not even end its gathering: none is none.
  if (localCandidates === 0) {
    return (
      `${waited}: this browser gathered no ICE candidates. Browsers leave loopback out by ` +
      "default, so on a machine whose only network is loopback they have nothing to connect " +
      "with: join any network (no internet needed), or start Chromium with " +
      "--disable-features=WebRtcHideLocalIpsWithMdns --allow-loopback-in-peer-connection"
    );
  }
  if (pc.remoteDescription === null) {
    return `${waited}: the server has not answered the offer (see its output)`;
  }
  return (
    `${waited} (ICE ${pc.iceConnectionState}): this browser offered ${localCandidates} ` +
    `candidates and the server ${remoteCandidates}, but no pair of them worked; see the ` +
    "server's output"
  );
}

setTimeout(() => {
  if (pc.connectionState !== "connected" && pc.connectionState !== "closed") {
    const text = diagnosis();
    setStatus("failed", text);
    log(text);
    signal({ log: text });
  }
}, connectTimeout * 1000);

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function waitBufferedLow() {
  return new Promise((resolve) => {
    channel.addEventListener("bufferedamountlow", resolve, { once: true });
  });
}

// Send `total` random bytes in 16 KiB messages and check that the same bytes come back.
async function bulk(total) {
  const chunk = 16384;
  const data = new Uint8Array(total);
  for (let i = 0; i < total; i += 65536) {
    crypto.getRandomValues(data.subarray(i, Math.min(i + 65536, total)));
  }
  const start = performance.now();
  channel.bufferedAmountLowThreshold = 256 * 1024;
  const sending = (async () => {
    for (let offset = 0; offset < total; offset += chunk) {
      while (channel.bufferedAmount > 1024 * 1024) {
        await waitBufferedLow();
      }
      channel.send(data.subarray(offset, Math.min(offset + chunk, total)));
    }
  })();
  let received = 0;
  while (received < total) {
    const echo = await nextMessage();
    if (typeof echo === "string") {
      throw new Error("a text message in the middle of a binary transfer");
    }
    const bytes = new Uint8Array(echo);
    const expected = data.subarray(received, received + bytes.length);
    if (bytes.length === 0 || !bytes.every((value, i) => value === expected[i])) {
      throw new Error(`echo differs from what was sent at byte ${received}`);
    }
    received += bytes.length;
  }
  await sending;
  const seconds = (performance.now() - start) / 1000;
  const sha = await sha256Hex(data);
  log(`1 MiB echoed intact in ${seconds.toFixed(2)} s, sha256 ${sha}`);
  return sha;
}

async function selfTest() {
  const texts = ["hello", "ünïcödé ✓", "", "x".repeat(60000)];
  for (const text of texts) {
    channel.send(text);
    if ((await nextMessage()) !== text) {
      throw new Error(`text echo of ${text.length} characters differs`);
    }
  }
  const sha = await bulk(1 << 20);
  const verdict = `self-test passed: ${texts.length} texts, 1048576 bytes, sha256 ${sha}`;
  channel.send(verdict);
  await nextMessage();
  log(verdict);
  setStatus("connected", "self-test passed");
  document.title = "self-test passed";
  channel.close();
}

channel.onopen = () => {
  log("data channel open");
  textInput.disabled = sendButton.disabled = bulkButton.disabled = false;
  if (new URLSearchParams(location.search).has("selftest")) {
    selfTest().catch((error) => {
      log(`self-test FAILED: ${error}`);
      setStatus("failed", `self-test FAILED: ${error}`);
      channel.send(`self-test FAILED: ${error}`);
    });
  } else {
    (async () => {
      let binary = 0;
      for (;;) {
        const echo = await nextMessage();
        if (typeof echo === "string") {
          log(`echo: ${echo}`);
        } else {
          binary += echo.byteLength;
          if (binary % (1 << 20) === 0) {
            log(`echo: ${binary} binary bytes so far`);
          }
        }
      }
    })();
  }
};
channel.onclose = () => log("data channel closed");

document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  channel.send(textInput.value);
  textInput.value = "";
};
bulkButton.onclick = () => {
  // The echo loop above reads the inbox and reports each MiB that came back. 1 MiB stays far
  // below the 16 MiB at which Chromium closes a channel whose send buffer overflows.
  const data = new Uint8Array(1 << 20);
  for (let offset = 0; offset < data.length; offset += 16384) {
    channel.send(data.subarray(offset, offset + 16384));
  }
};
