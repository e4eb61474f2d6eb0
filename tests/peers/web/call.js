// Commands for the page of media.js that look at what the page plays (loaded after it by
// call.html).
//
// - capabilities: RTCRtpSender/RTCRtpReceiver.getCapabilities(kind).codecs, to learn which codecs
//   this Chromium can send and receive.
// - video_pixels: the picture a remote <video> element shows right now, drawn into a canvas at
//   its intrinsic size; the answer is the mean colour of a few regions given as fractions of the
//   picture ({x0, y0, x1, y1}), plus the element's playback quality counters.
// - video_rect: where the remote <video> element is on the page (CSS pixels), for a DevTools
//   screenshot of it.

"use strict";

function remoteVideoElement() {
  for (const element of players.values()) {
    if (element.tagName === "VIDEO") {
      return element;
    }
  }
  return null;
}

function meanColour(data, width, region) {
  const x0 = Math.floor(region.x0 * width);
  const x1 = Math.ceil(region.x1 * width);
  const height = data.length / 4 / width;
  const y0 = Math.floor(region.y0 * height);
  const y1 = Math.ceil(region.y1 * height);
  const sum = [0, 0, 0];
  let count = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const offset = 4 * (y * width + x);
      sum[0] += data[offset];
      sum[1] += data[offset + 1];
      sum[2] += data[offset + 2];
      count += 1;
    }
  }
  return sum.map((value) => Math.round(value / Math.max(count, 1)));
}

Object.assign(commands, {
  capabilities(m) {
    const source = m.side === "receiver" ? RTCRtpReceiver : RTCRtpSender;
    const capabilities = source.getCapabilities(m.trackKind);
    return capabilities.codecs.map((c) => ({
      mimeType: c.mimeType,
      clockRate: c.clockRate,
      sdpFmtpLine: c.sdpFmtpLine || "",
    }));
  },
  video_rect() {
    const video = remoteVideoElement();
    if (video === null) {
      throw new Error("no remote video is playing");
    }
    video.scrollIntoView();
    const rect = video.getBoundingClientRect();
    return {
      x: rect.x + window.scrollX,
      y: rect.y + window.scrollY,
      width: rect.width,
      height: rect.height,
      devicePixelRatio: window.devicePixelRatio,
    };
  },
  video_pixels(m) {
    const video = remoteVideoElement();
    if (video === null) {
      throw new Error("no remote video is playing");
    }
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (width === 0 || height === 0) {
      return { width, height, regions: [] };
    }
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(video, 0, 0, width, height);
    const data = context.getImageData(0, 0, width, height).data;
    const quality = video.getVideoPlaybackQuality();
    return {
      width,
      height,
      regions: m.regions.map((region) => meanColour(data, width, region)),
      totalVideoFrames: quality.totalVideoFrames,
      droppedVideoFrames: quality.droppedVideoFrames,
    };
  },
});
