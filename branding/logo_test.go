package branding_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/branding"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/internal/outbound"
)

// picture is a w×h image with a gradient, so scaling has something to do.
func picture(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: 0x80, A: 0xff})
		}
	}
	return img
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bomb is a valid PNG whose header (IHDR) declares w×h pixels: a few
// hundred bytes that would decode into gigabytes.
func bomb(t *testing.T, w, h uint32) []byte {
	t.Helper()
	raw := encodePNG(t, picture(1, 1))
	// 8-byte signature, then IHDR: length(4) "IHDR"(4) width(4) height(4) ... crc(4).
	binary.BigEndian.PutUint32(raw[16:], w)
	binary.BigEndian.PutUint32(raw[20:], h)
	binary.BigEndian.PutUint32(raw[29:], crc32.ChecksumIEEE(raw[12:29]))
	return raw
}

func TestSanitize(t *testing.T) {
	var gifBuf, jpegBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, picture(40, 20), nil); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpegBuf, picture(600, 300), nil); err != nil {
		t.Fatal(err)
	}
	withTrailer := append(encodePNG(t, picture(8, 8)), []byte("<html><script>alert(1)</script></html>")...)
	tests := []struct {
		name         string
		raw          []byte
		wantW, wantH int   // the stored logo's size
		wantErr      error // nil: accepted
	}{
		{"png kept small", encodePNG(t, picture(64, 32)), 64, 32, nil},
		{"png scaled down", encodePNG(t, picture(1024, 512)), 256, 128, nil},
		{"tall png scaled down", encodePNG(t, picture(100, 1000)), 25, 256, nil},
		{"gif", gifBuf.Bytes(), 40, 20, nil},
		{"jpeg scaled down", jpegBuf.Bytes(), 256, 128, nil},
		{"png with html after IEND (polyglot)", withTrailer, 8, 8, nil},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), 0, 0, branding.ErrLogoFormat},
		{"svg with xml declaration", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>`), 0, 0, branding.ErrLogoFormat},
		{"html", []byte(`<!doctype html><script>alert(1)</script>`), 0, 0, branding.ErrLogoFormat},
		{"gif header then html", []byte("GIF89a\x01\x00\x01\x00<script>alert(1)</script>"), 0, 0, branding.ErrLogoFormat},
		{"gif with html after its trailer (polyglot)", append(gifBuf.Bytes()[:len(gifBuf.Bytes()):len(gifBuf.Bytes())], "<script>alert(1)</script>"...), 40, 20, nil},
		{"empty", nil, 0, 0, branding.ErrLogoFormat},
		{"truncated png", encodePNG(t, picture(64, 64))[:60], 0, 0, branding.ErrLogoFormat},
		{"too many bytes", append(encodePNG(t, picture(2, 2)), make([]byte, branding.MaxLogoBytes)...), 0, 0, branding.ErrLogoTooLarge},
		{"decompression bomb", bomb(t, 100000, 100000), 0, 0, branding.ErrLogoDimensions},
		{"too wide", bomb(t, 5000, 1), 0, 0, branding.ErrLogoDimensions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := branding.Sanitize(tc.raw)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Sanitize() = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Sanitize() = %v, want a logo", err)
			}
			cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
			if err != nil || format != "png" {
				t.Fatalf("stored logo: format %q, %v; want png", format, err)
			}
			if cfg.Width != tc.wantW || cfg.Height != tc.wantH {
				t.Errorf("stored logo is %dx%d, want %dx%d", cfg.Width, cfg.Height, tc.wantW, tc.wantH)
			}
			if bytes.Contains(out, []byte("<")) && bytes.Contains(out, []byte("script")) {
				t.Error("stored logo still carries the script")
			}
			if !bytes.HasSuffix(out, []byte("IEND\xaeB`\x82")) {
				t.Error("stored logo does not end at IEND")
			}
		})
	}
}

func TestFetch_ThroughOutboundPolicy(t *testing.T) {
	logo := encodePNG(t, picture(16, 16))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/logo.png":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(logo)
		case "/logo.svg":
			w.Header().Set("Content-Type", "image/svg+xml")
			_, _ = w.Write([]byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`))
		case "/huge":
			_, _ = w.Write(make([]byte, branding.MaxLogoBytes+10))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	// The production policy refuses loopback (S70), whatever the URL says.
	_, err := branding.Fetch(ctx, outbound.New(outbound.Policy{}), srv.URL+"/logo.png")
	if !errors.Is(err, outbound.ErrForbiddenAddress) {
		t.Fatalf("Fetch(loopback, default policy) = %v, want ErrForbiddenAddress", err)
	}
	hc := outbound.New(outbound.Policy{AllowLoopback: true})
	got, err := branding.Fetch(ctx, hc, srv.URL+"/logo.png")
	if err != nil {
		t.Fatalf("Fetch(loopback allowed) = %v", err)
	}
	if want, _ := branding.Sanitize(logo); !bytes.Equal(got, want) {
		t.Error("Fetch returned other bytes than the sanitized logo")
	}
	for path, want := range map[string]error{"/logo.svg": branding.ErrLogoFormat, "/huge": branding.ErrLogoTooLarge} {
		if _, err := branding.Fetch(ctx, hc, srv.URL+path); !errors.Is(err, want) {
			t.Errorf("Fetch(%s) = %v, want %v", path, err, want)
		}
	}
	if _, err := branding.Fetch(ctx, hc, srv.URL+"/missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Fetch(missing) = %v, want status 404", err)
	}
}

func TestSaveLoad(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	a, _ := branding.Sanitize(encodePNG(t, picture(10, 10)))
	b, _ := branding.Sanitize(encodePNG(t, picture(20, 10)))
	ha, err := branding.Save(ctx, st, a)
	if err != nil {
		t.Fatal(err)
	}
	if ha != branding.Hash(a) || !branding.ValidHash(ha) {
		t.Fatalf("Save() = %q, want the hash %q", ha, branding.Hash(a))
	}
	if _, err := branding.Save(ctx, st, a); err != nil { // again: same name
		t.Fatalf("Save(same logo again) = %v", err)
	}
	hb, _ := branding.Save(ctx, st, b)
	got, err := branding.Load(ctx, st, map[string]bool{ha: true, hb: true, strings.Repeat("0", 64): true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[ha], a) || !bytes.Equal(got[hb], b) || len(got) != 2 {
		t.Errorf("Load() = %d logos, want the 2 saved", len(got))
	}
	if branding.Path(ha) != "/branding/"+ha+".png" {
		t.Errorf("Path(%q) = %q", ha, branding.Path(ha))
	}
}

func TestContrast(t *testing.T) {
	tests := []struct {
		a, b string
		want float64
	}{
		{"#000000", "#ffffff", 21},
		{"#FFFFFF", "#ffffff", 1},
		{"#767676", "#ffffff", 4.54},
		{"#2f5bd3", "#ffffff", 5.90}, // realmgate's own buttons
	}
	for _, tc := range tests {
		got, err := branding.Contrast(tc.a, tc.b)
		if err != nil || got < tc.want-0.01 || got > tc.want+0.01 {
			t.Errorf("Contrast(%q, %q) = %.2f, %v; want %.2f", tc.a, tc.b, got, err, tc.want)
		}
	}
	if _, err := branding.Contrast("blue", "#ffffff"); !errors.Is(err, branding.ErrColor) {
		t.Errorf("Contrast(blue) = %v, want ErrColor", err)
	}
}
