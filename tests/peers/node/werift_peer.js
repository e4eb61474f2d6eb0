"use strict";
// A werift peer connection (TypeScript: its own ICE, DTLS and SCTP), driven over stdin/stdout
// by tests/peers/node/harness.py with the control protocol of control.js. Configuration (JSON,
// first argument): trickle, echo, maxMessageSize.
//
// Loopback only: werift leaves out 127.0.0.1 unless it is listed in iceAdditionalHostAddresses,
// and it always gathers the machine's other addresses too; those candidates are never handed
// out (events and SDP alike) and iceFilterCandidatePair keeps every check on loopback.

const net = require("net");
const { RTCPeerConnection } = require("werift");
const { log, run } = require("./control");

function isLoopback(host) {
  if (net.isIPv4(host)) {
    return host.startsWith("127.");
  }
  return host === "::1";
}

function candidateHost(line) {
  // candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...
  const fields = line.replace(/^a=/, "").split(" ");
  return fields[4] || "";
}

function loopbackOnly(sdp, trickle) {
  return sdp
    .split("\r\n")
    .filter((line) => {
      if (line.startsWith("a=candidate:")) {
        return !trickle && isLoopback(candidateHost(line));
      }
      return !(trickle && line === "a=end-of-candidates");
    })
    .join("\r\n");
}

class ChannelHandle {
  constructor(peer, dc) {
    this.dc = dc;
    dc.stateChanged.subscribe((state) => {
      if (state === "open") {
        peer.opened(this);
      } else if (state === "closed") {
        peer.closed(this);
      }
    });
    dc.onMessage.subscribe((data) => peer.message(this, data));
    dc.error.subscribe((error) => log("error", `${dc.label}: ${error}`));
  }

  info() {
    const dc = this.dc;
    return {
      label: dc.label,
      id: dc.id,
      protocol: dc.protocol,
      ordered: dc.ordered,
      negotiated: dc.negotiated,
      maxRetransmits: dc.maxRetransmits ?? null,
      maxPacketLifeTime: dc.maxPacketLifeTime ?? null,
    };
  }

  send(data) {
    this.dc.send(typeof data === "string" ? data : Buffer.from(data));
  }

  bufferedAmount() {
    return this.dc.bufferedAmount;
  }

  setLowThreshold(value) {
    this.dc.bufferedAmountLowThreshold = value;
  }

  onLow(callback) {
    this.dc.bufferedAmountLow.subscribe(callback);
  }

  close() {
    this.dc.close();
  }
}

async function makeAdapter(peer, config) {
  const pc = new RTCPeerConnection({
    iceServers: [],
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceUseIpv6: false,
    iceFilterCandidatePair: (pair) =>
      isLoopback(pair.localCandidate.host) && isLoopback(pair.remoteCandidate.host),
    maxMessageSize: config.maxMessageSize || 65536,
  });
  const states = () => ({
    connectionState: pc.connectionState,
    iceConnectionState: pc.iceConnectionState,
    iceGatheringState: pc.iceGatheringState,
    signalingState: pc.signalingState,
  });
  pc.onIceCandidate.subscribe((candidate) => {
    if (candidate === undefined || candidate === null) {
      peer.candidate(null);
      return;
    }
    const init = candidate.toJSON();
    if (init.candidate && isLoopback(candidateHost(init.candidate))) {
      peer.candidate(init);
    }
  });
  pc.connectionStateChange.subscribe(() => peer.stateChanged("connectionstatechange"));
  pc.iceConnectionStateChange.subscribe(() => peer.stateChanged("iceconnectionstatechange"));
  pc.iceGatheringStateChange.subscribe(() => peer.stateChanged("icegatheringstatechange"));
  pc.signalingStateChange.subscribe(() => peer.stateChanged("signalingstatechange"));
  pc.onDataChannel.subscribe((dc) => {
    const handle = new ChannelHandle(peer, dc);
    peer.remoteChannel(handle);
    if (dc.readyState === "open") {
      peer.opened(handle);
    }
  });

  async function local(description) {
    await pc.setLocalDescription(description);
    if (!config.trickle) {
      while (pc.iceGatheringState !== "complete") {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    const result = pc.localDescription;
    return { type: result.type, sdp: loopbackOnly(result.sdp, config.trickle) };
  }

  return {
    createOffer: async () => local(await pc.createOffer()),
    createAnswer: async () => local(await pc.createAnswer()),
    async setRemote(description) {
      await pc.setRemoteDescription({ type: description.type, sdp: description.sdp });
    },
    async addCandidate(init) {
      await pc.addIceCandidate(init === null ? null : init);
    },
    createChannel(label, options) {
      const handle = new ChannelHandle(peer, pc.createDataChannel(label, options));
      setImmediate(() => handle.dc.readyState === "open" && peer.opened(handle));
      return handle;
    },
    states,
    async close() {
      await pc.close();
    },
  };
}

run(makeAdapter);
