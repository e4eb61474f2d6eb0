// The browser side of examples/video_call: the camera and microphone go to the server's trio_rtc
// peer connection, whose picture and sound play in the "remote" <video>.
//
// Signalling over a WebSocket with the messages of trio_rtc.signaling: {"description": {type,
// sdp}} and {"candidate": candidate.toJSON() | null}. The server offers; this page answers,
// adding its camera and microphone to the transceivers the offer made. Once a second the page
// sends {"report": {...}} (what getStats() says it plays) so the server can print it.

"use strict";

const statusBox = document.getElementById("status");
const localVideo = document.getElementById("local");
const remoteVideo = document.getElementById("remote");
const unmuteButton = document.getElementById("unmute");
const hangupButton = document.getElementById("hangup");

function log(text) {
  const line = document.createElement("div");
  line.textContent = text;
  statusBox.append(line);
  console.log(text);
}

let ws = null;
let pc = null;
let camera = null;
let reporter = null;

function signal(message) {
  if (ws !== null && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(message));
  }
}

function playRemote() {
  remoteVideo.play().catch(() => {
    // Autoplay with sound needs a gesture in some browsers: play muted until the user unmutes.
    remoteVideo.muted = true;
    unmuteButton.hidden = false;
    remoteVideo.play().catch((error) => log(`cannot play: ${error}`));
  });
}

unmuteButton.onclick = () => {
  remoteVideo.muted = false;
  unmuteButton.hidden = true;
};

async function onDescription(description) {
  await pc.setRemoteDescription(description);
  if (description.type !== "offer") {
    return;
  }
  // Add the camera and microphone once: addTrack takes the transceivers the offer made.
  if (pc.getSenders().every((sender) => sender.track === null)) {
    for (const track of camera.getTracks()) {
      pc.addTrack(track, camera);
    }
  }
  await pc.setLocalDescription(await pc.createAnswer());
  signal({ description: pc.localDescription.toJSON() });
}

async function report() {
  const stats = await pc.getStats();
  const summary = { framesDecoded: 0, width: 0, height: 0, audioSamples: 0 };
  stats.forEach((entry) => {
    if (entry.type !== "inbound-rtp") {
      return;
    }
    if (entry.kind === "video") {
      summary.framesDecoded = entry.framesDecoded || 0;
      summary.width = entry.frameWidth || 0;
      summary.height = entry.frameHeight || 0;
    } else if (entry.kind === "audio") {
      summary.audioSamples = entry.totalSamplesReceived || 0;
    }
  });
  const quality = remoteVideo.getVideoPlaybackQuality();
  summary.videoFramesShown = quality.totalVideoFrames;
  signal({ report: summary });
  return summary;
}

function hangUp() {
  clearInterval(reporter);
  if (pc !== null) {
    pc.close();
  }
  if (ws !== null) {
    ws.close();
  }
  for (const track of camera ? camera.getTracks() : []) {
    track.stop();
  }
  hangupButton.disabled = true;
  log("hung up");
}

async function start() {
  camera = await navigator.mediaDevices.getUserMedia({
    video: { width: 640, height: 480 },
    audio: true,
  });
  localVideo.srcObject = camera;
  const settings = camera.getVideoTracks()[0].getSettings();
  log(`camera ${settings.width}x${settings.height}`);

  pc = new RTCPeerConnection();
  pc.onicecandidate = (event) => {
    signal({ candidate: event.candidate ? event.candidate.toJSON() : null });
  };
  pc.onconnectionstatechange = () => log(`connection: ${pc.connectionState}`);
  pc.ontrack = (event) => {
    log(`receiving ${event.track.kind}`);
    if (remoteVideo.srcObject === null) {
      remoteVideo.srcObject = event.streams[0] || new MediaStream();
    }
    if (event.streams.length === 0) {
      remoteVideo.srcObject.addTrack(event.track);
    }
    playRemote();
  };

  ws = new WebSocket(document.body.dataset.signaling);
  ws.onmessage = async (event) => {
    const message = JSON.parse(event.data);
    try {
      if (message.description) {
        await onDescription(message.description);
      } else if ("candidate" in message) {
        // null is end-of-candidates; browsers take an empty init for that.
        await pc.addIceCandidate(message.candidate || {});
      }
    } catch (error) {
      log(`signalling error: ${error}`);
    }
  };
  ws.onclose = () => log("signalling closed");
  hangupButton.disabled = false;
  reporter = setInterval(async () => {
    if (pc.connectionState !== "connected") {
      return;
    }
    const summary = await report();
    document.title = `trio_rtc video call: ${summary.framesDecoded} frames`;
  }, 1000);
}

hangupButton.onclick = hangUp;
start().catch((error) => log(`could not start: ${error}`));
