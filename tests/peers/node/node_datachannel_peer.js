"use strict";
// A node-datachannel peer connection (libdatachannel: libjuice ICE, OpenSSL DTLS, usrsctp),
// driven over stdin/stdout by tests/peers/node/harness.py with the control protocol of
// control.js. Configuration (JSON, first argument): trickle, echo, maxMessageSize.
//
// Loopback only: libjuice binds its one UDP socket to 127.0.0.1 (bindAddress), so its only
// candidate is a 127.0.0.1 host candidate, and no STUN or TURN server is configured.

const ndc = require("node-datachannel");
const { log, run } = require("./control");

const GATHERING = { new: "new", "in-progress": "gathering", complete: "complete" };

function mids(sdp) {
  return [...sdp.matchAll(/^a=mid:(\S+)/gm)].map((match) => match[1]);
}

function ufrag(sdp) {
  const match = /^a=ice-ufrag:(\S+)/m.exec(sdp);
  return match ? match[1] : null;
}

function withoutCandidates(sdp) {
  return sdp
    .split("\r\n")
    .filter((line) => !line.startsWith("a=candidate:") && line !== "a=end-of-candidates")
    .join("\r\n");
}

class ChannelHandle {
  constructor(peer, dc, options) {
    this.dc = dc;
    this.options = options;
    this.label = dc.getLabel();
    dc.onOpen(() => peer.opened(this));
    dc.onClosed(() => peer.closed(this));
    dc.onError((error) => log("error", `${this.label}: ${error}`));
    dc.onMessage((data) => peer.message(this, data));
  }

  info() {
    // A closed channel's native object is gone (getId() throws): keep what it last said.
    if (this.dc.isOpen() || this.cached === undefined) {
      const options = this.options;
      let id = null;
      let protocol = "";
      try {
        id = this.dc.getId();
        protocol = this.dc.getProtocol();
      } catch (error) {
        // Not known yet, or destroyed already.
      }
      this.cached = {
        label: this.label,
        id,
        protocol,
        // libdatachannel does not say what the remote asked for: null for its channels.
        ordered: options ? options.ordered !== false : null,
        negotiated: options ? Boolean(options.negotiated) : null,
        maxRetransmits: options?.maxRetransmits ?? null,
        maxPacketLifeTime: options?.maxPacketLifeTime ?? null,
      };
    }
    return this.cached;
  }

  send(data) {
    if (typeof data === "string") {
      this.dc.sendMessage(data);
    } else {
      this.dc.sendMessageBinary(data);
    }
  }

  bufferedAmount() {
    return this.dc.bufferedAmount();
  }

  setLowThreshold(value) {
    this.dc.setBufferedAmountLowThreshold(value);
  }

  onLow(callback) {
    this.dc.onBufferedAmountLow(callback);
  }

  close() {
    this.dc.close();
  }
}

async function makeAdapter(peer, config) {
  const pc = new ndc.PeerConnection("trio_rtc-interop", {
    iceServers: [],
    bindAddress: "127.0.0.1",
    disableAutoNegotiation: true,
    maxMessageSize: config.maxMessageSize || 262144,
  });
  let gathered = false;
  let gatheredWaiters = [];
  let closed = false;

  const states = () => ({
    connectionState: closed ? "closed" : pc.state(),
    iceConnectionState: closed ? "closed" : pc.iceState(),
    iceGatheringState: GATHERING[pc.gatheringState()] || pc.gatheringState(),
    signalingState: closed ? "closed" : pc.signalingState(),
  });

  // node-datachannel delivers each kind of callback through its own queue, so "gathering
  // complete" can overtake the last candidate: at completion every candidate of the local
  // description is announced (each once), then end-of-candidates.
  const announced = new Set();
  const announce = (candidate, mid) => {
    const line = candidate.replace(/^a=/, "");
    if (announced.has(line)) {
      return;
    }
    announced.add(line);
    const sdp = pc.localDescription().sdp;
    peer.candidate({
      candidate: line,
      sdpMid: mid,
      sdpMLineIndex: Math.max(0, mids(sdp).indexOf(mid)),
      usernameFragment: ufrag(sdp),
    });
  };
  pc.onLocalCandidate(announce);
  pc.onGatheringStateChange((state) => {
    if (state === "complete" && !gathered) {
      gathered = true;
      const sdp = pc.localDescription().sdp;
      const mid = mids(sdp)[0];
      for (const match of sdp.matchAll(/^a=(candidate:.*?)\r?$/gm)) {
        announce(match[1], mid);
      }
      peer.candidate(null);
      for (const resolve of gatheredWaiters) {
        resolve();
      }
      gatheredWaiters = [];
    }
    peer.stateChanged("icegatheringstatechange");
  });
  pc.onStateChange(() => peer.stateChanged("connectionstatechange"));
  pc.onIceStateChange(() => peer.stateChanged("iceconnectionstatechange"));
  pc.onSignalingStateChange(() => peer.stateChanged("signalingstatechange"));
  pc.onDataChannel((dc) => {
    const handle = new ChannelHandle(peer, dc, null);
    peer.remoteChannel(handle);
    // libdatachannel hands over channels the remote opened already open.
    if (dc.isOpen()) {
      peer.opened(handle);
    }
  });

  async function local(type) {
    pc.setLocalDescription(type);
    if (!config.trickle && !gathered) {
      await new Promise((resolve) => gatheredWaiters.push(resolve));
    }
    const description = pc.localDescription();
    const sdp = config.trickle ? withoutCandidates(description.sdp) : description.sdp;
    return { type: description.type, sdp };
  }

  return {
    createOffer: () => local("offer"),
    createAnswer: () => local("answer"),
    setRemote(description) {
      pc.setRemoteDescription(description.sdp, description.type);
    },
    addCandidate(init) {
      // libdatachannel has no end-of-candidates call: it keeps checking what it has.
      if (init === null || !init.candidate) {
        return;
      }
      const remote = pc.remoteDescription();
      const mid = init.sdpMid ?? (remote ? mids(remote.sdp)[init.sdpMLineIndex || 0] : "0");
      pc.addRemoteCandidate(init.candidate, mid);
    },
    createChannel(label, options) {
      const init = {};
      if (options.protocol !== undefined) init.protocol = options.protocol;
      if (options.negotiated) init.negotiated = true;
      if (options.id !== undefined) init.id = options.id;
      if (options.ordered === false) init.unordered = true;
      if (options.maxRetransmits !== undefined) init.maxRetransmits = options.maxRetransmits;
      if (options.maxPacketLifeTime !== undefined) {
        init.maxPacketLifeTime = options.maxPacketLifeTime;
      }
      const handle = new ChannelHandle(peer, pc.createDataChannel(label, init), options);
      // A negotiated channel on a running association is open at once.
      setImmediate(() => handle.dc.isOpen() && peer.opened(handle));
      return handle;
    },
    states,
    close() {
      if (!closed) {
        closed = true;
        pc.close();
      }
    },
  };
}

run(makeAdapter, () => ndc.cleanup());
