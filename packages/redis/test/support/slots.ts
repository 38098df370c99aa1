/**
 * Redis Cluster's key → slot function (CRC16/XMODEM of the key's hash tag, or of the whole key
 * when it has none, modulo 16384), so a test can pick accounts and holdIds on chosen masters
 * without a round trip per key. Checked against `CLUSTER KEYSLOT` by the tests that use it.
 */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, "utf8");
  let start = 0;
  let end = bytes.length;
  const open = bytes.indexOf(0x7b); // {
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc ^= (bytes[i] as number) << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16_384;
}
