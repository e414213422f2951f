// Serves the Vite build (dist/) with `vite preview` on loopback and prints its URL.
import { preview } from "vite";

const server = await preview({
  logLevel: "warn",
  preview: { host: "127.0.0.1", port: Number(process.env.PORT ?? 0), strictPort: true },
});
const address = server.httpServer.address();
if (!address || typeof address === "string") throw new Error("vite preview is not listening on a port");
console.log(`serving http://127.0.0.1:${address.port}/`);
