// The browser side of examples/browser_echo: one RTCPeerConnection, one data channel "echo",
// signalling over a WebSocket with the messages of trio_rtc.signaling:
// {"description": {type, sdp}} and {"candidate": candidate.toJSON() | null}.
// With ?selftest in the URL the page checks the echo by itself and sends a verdict line.

"use strict";

const logBox = document.getElementById("log");
const textInput = document.getElementById("text");
const sendButton = document.getElementById("send");
const bulkButton = document.getElementById("bulk");

function log(text) {
  const line = document.createElement("div");
  line.textContent = text;
  logBox.append(line);
  console.log(text);
}

const ws = new WebSocket(document.body.dataset.signaling);
const pc = new RTCPeerConnection();
const channel = pc.createDataChannel("echo");
channel.binaryType = "arraybuffer";

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
  ws.send(JSON.stringify(message));
}

pc.onicecandidate = (event) => {
  signal({ candidate: event.candidate ? event.candidate.toJSON() : null });
};
pc.onconnectionstatechange = () => log(`connection: ${pc.connectionState}`);

ws.onmessage = async (event) => {
  const message = JSON.parse(event.data);
  try {
    if (message.description) {
      await pc.setRemoteDescription(message.description);
    } else if ("candidate" in message) {
      // null is end-of-candidates; browsers take an empty init for that.
      await pc.addIceCandidate(message.candidate || {});
    }
  } catch (error) {
    log(`signalling error: ${error}`);
  }
};

ws.onopen = async () => {
  await pc.setLocalDescription(await pc.createOffer());
  signal({ description: pc.localDescription.toJSON() });
};
ws.onclose = () => log("signalling closed");

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
  document.title = "self-test passed";
  channel.close();
}

channel.onopen = () => {
  log("data channel open");
  textInput.disabled = sendButton.disabled = bulkButton.disabled = false;
  if (new URLSearchParams(location.search).has("selftest")) {
    selfTest().catch((error) => {
      log(`self-test FAILED: ${error}`);
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
