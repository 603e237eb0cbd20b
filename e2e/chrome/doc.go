// Package chrome holds realmgate's browser tests: home-realm discovery driven
// in a real headless Chromium (Debian's chromium package) through chromedp.
// The broker, the development IdP and the demo app run in the test process on
// 127.0.0.1; the package has no code of its own beyond this comment; see
// README.md.
package chrome
