package branding

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif"  // GIF logos are decoded (and re-encoded as PNG)
	_ "image/jpeg" // JPEG logos are decoded (and re-encoded as PNG)
	"image/png"
	"io"
	"net/http"
	"strings"
	"time"
)

// Limits of a logo.
const (
	// MaxLogoBytes bounds an uploaded or fetched logo before decoding.
	MaxLogoBytes = 512 << 10
	// MaxLogoSide bounds each side of a logo before decoding: a small file
	// that declares a huge image (a decompression bomb) is refused from
	// its header, before any pixel is allocated.
	MaxLogoSide = 4096
	// MaxLogoPixels bounds width × height before decoding.
	MaxLogoPixels = 4096 * 4096
	// LogoSide is the largest side of a stored logo: larger ones are
	// scaled down, keeping their aspect ratio.
	LogoSide = 256
	// FetchTimeout bounds fetching one logo_url.
	FetchTimeout = 10 * time.Second
)

// Errors of Sanitize and Fetch, matched with errors.Is.
var (
	// ErrLogoTooLarge means the logo's bytes exceed MaxLogoBytes.
	ErrLogoTooLarge = errors.New("branding: logo larger than 512 KiB")
	// ErrLogoFormat means the logo is not a PNG, JPEG or GIF image (SVG
	// and everything else is refused: no active content).
	ErrLogoFormat = errors.New("branding: logo must be a PNG, JPEG or GIF image")
	// ErrLogoDimensions means the logo declares too many pixels.
	ErrLogoDimensions = errors.New("branding: logo dimensions too large")
)

// formats are the image formats a logo may have (the standard library's
// decoders registered above).
var formats = map[string]bool{"png": true, "jpeg": true, "gif": true}

// Sanitize turns raw into a stored logo: it checks the size, reads the
// header (image.DecodeConfig) and refuses anything but PNG, JPEG and GIF
// or more than MaxLogoSide per side, decodes, scales down to at most
// LogoSide per side and encodes a fresh PNG. Nothing of raw but its pixels
// survives: no metadata, no text chunks, no trailing bytes (a polyglot
// loses its other half).
func Sanitize(raw []byte) ([]byte, error) {
	if len(raw) > MaxLogoBytes {
		return nil, ErrLogoTooLarge
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil || !formats[format] {
		return nil, ErrLogoFormat
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > MaxLogoSide || cfg.Height > MaxLogoSide || cfg.Width*cfg.Height > MaxLogoPixels {
		return nil, fmt.Errorf("%w: %dx%d, at most %dx%d", ErrLogoDimensions, cfg.Width, cfg.Height, MaxLogoSide, MaxLogoSide)
	}
	img, format2, err := image.Decode(bytes.NewReader(raw))
	if err != nil || format2 != format {
		return nil, ErrLogoFormat
	}
	out := scale(img, LogoSide)
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, out); err != nil {
		return nil, fmt.Errorf("branding: encode logo: %w", err)
	}
	return buf.Bytes(), nil
}

// scale returns img in a fresh NRGBA image whose sides are at most side,
// each output pixel the average of the source pixels it covers (a box
// filter, weighted by alpha, which is enough for a logo).
func scale(img image.Image, side int) *image.NRGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	nw, nh := w, h
	if w > side || h > side {
		if w >= h {
			nw, nh = side, max(1, h*side/w)
		} else {
			nw, nh = max(1, w*side/h), side
		}
	}
	src := image.NewRGBA(image.Rect(0, 0, w, h)) // premultiplied
	draw.Draw(src, src.Bounds(), img, b.Min, draw.Src)
	dst := image.NewNRGBA(image.Rect(0, 0, nw, nh))
	for y := range nh {
		y0, y1 := y*h/nh, max((y+1)*h/nh, y*h/nh+1)
		for x := range nw {
			x0, x1 := x*w/nw, max((x+1)*w/nw, x*w/nw+1)
			var r, g, bl, a, n uint64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					i := src.PixOffset(sx, sy)
					r += uint64(src.Pix[i])
					g += uint64(src.Pix[i+1])
					bl += uint64(src.Pix[i+2])
					a += uint64(src.Pix[i+3])
					n++
				}
			}
			c := color.RGBA{R: uint8(r / n), G: uint8(g / n), B: uint8(bl / n), A: uint8(a / n)}
			dst.Set(x, y, c) // RGBA (premultiplied) to NRGBA
		}
	}
	return dst
}

// Hash names a stored logo: the hex SHA-256 of its PNG.
func Hash(png []byte) string {
	h := sha256.Sum256(png)
	return hex.EncodeToString(h[:])
}

// ValidHash reports whether s can be a Hash.
func ValidHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// Path is where the broker serves the logo of hash, under the issuer.
func Path(hash string) string { return "/branding/" + hash + ".png" }

// Fetch reads the logo at url with hc, which must be the outbound client
// (internal/outbound) so that a tenant's logo_url reaches only what its
// policy allows (SECURITY S70), and sanitizes it. It reads at most
// MaxLogoBytes and gives up after FetchTimeout.
func Fetch(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("branding: fetch logo: %w", err)
	}
	req.Header.Set("Accept", "image/png, image/jpeg, image/gif")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("branding: fetch logo: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("branding: fetch logo: status %d", resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxLogoBytes+1))
	if err != nil {
		return nil, fmt.Errorf("branding: fetch logo: %w", err)
	}
	return Sanitize(raw)
}
