// Package e2e tests the server end to end: the real pipeline and ffmpeg
// behind the HTTP API, and the page in a real browser. It holds only tests;
// they live apart from the server's own so that the handler tests, which
// use fakes, build without the engine.
package e2e
