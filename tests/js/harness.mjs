// Shared by the test scripts: checks that fail loudly, waits with a
// deadline (never a fixed sleep), and a whole-script time limit.
//
// A script exits 0 and prints "ok <name>" when every check held; any
// failure prints "FAIL ..." and exits 1.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** The client under test, loaded as a browser or a CommonJS user would. */
export const boardcast = require("../../src/boardcast.js");

/** How long any wait lasts before it fails the script. */
export const WAIT_MS = 15000;

export function fail(message) {
  console.error("FAIL " + message);
  process.exit(1);
}

export function check(cond, message) {
  if (!cond) fail(message);
}

export function equal(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${message}: got ${a}, expected ${e}`);
}

/** Resolves once `cond()` holds; fails the script after `ms`. */
export function until(what, cond, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  return new Promise((resolve) => {
    const poll = () => {
      let value;
      try {
        value = cond();
      } catch (e) {
        fail(`${what}: ${e && e.stack}`);
      }
      if (value) return resolve(value);
      if (Date.now() > deadline) fail(`timed out after ${ms} ms waiting until ${what}`);
      setTimeout(poll, 2);
    };
    poll();
  });
}

/** Uncaught errors a script expects (see `expectUncaught`). */
export const uncaught = [];
let tolerated = () => false;

/** Uncaught errors for which `match(error)` holds are collected in
 * `uncaught` instead of failing the script. */
export function expectUncaught(match) {
  tolerated = match;
}

/** Fails the script if it runs longer than `ms` (a hang is a failure). */
export function limit(name, ms = 60000) {
  const timer = setTimeout(() => fail(`${name}: still running after ${ms} ms`), ms);
  timer.unref();
  process.on("uncaughtException", (e) => {
    if (tolerated(e)) uncaught.push(e);
    else fail(`${name}: uncaught ${e && e.stack}`);
  });
  process.on("unhandledRejection", (e) => fail(`${name}: unhandled ${e && e.stack}`));
}

/** The bytes of an ArrayBuffer or view, as a plain array (for `equal`). */
export function bytes(data) {
  return Array.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
}

/** The port given as the script's first argument. */
export function port() {
  const p = Number(process.argv[2]);
  if (!(p > 0)) fail("usage: node --experimental-websocket <script> <port>");
  return p;
}
