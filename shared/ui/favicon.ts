/** A 16×16 PNG: a light tide line between night-blue sky and blue water. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAATklEQVR42mMQUrb9TwlmGDWAeAPqT/yHY5INQNaMbhADuonEaETGDLichq5QPv8iHOM0ABdG1oxuEAO6icRoRMYMuJxGjGYMA8jBw8AAAL7mIb8PF3w8AAAAAElFTkSuQmCC', 'base64');

/**
 * The page's icon as an .ico (one PNG image inside an ICONDIR, which every browser reads). The
 * page names no icon (no <link>: it makes no request but its data), so browsers ask for
 * /favicon.ico at the server's root; the local server answers with this.
 */
export const FAVICON_ICO: Uint8Array = (() => {
  const head = Buffer.alloc(22);
  head.writeUInt16LE(0, 0); // reserved
  head.writeUInt16LE(1, 2); // type: icon
  head.writeUInt16LE(1, 4); // one image
  head.writeUInt8(16, 6); // width
  head.writeUInt8(16, 7); // height
  head.writeUInt8(0, 8); // no palette
  head.writeUInt8(0, 9); // reserved
  head.writeUInt16LE(1, 10); // colour planes
  head.writeUInt16LE(32, 12); // bits per pixel
  head.writeUInt32LE(PNG.length, 14);
  head.writeUInt32LE(22, 18); // image offset
  return new Uint8Array(Buffer.concat([head, PNG]));
})();
