/** Standard base64 of bytes, with the web's btoa (no Buffer, so the core stays runtime-free). */
export function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
