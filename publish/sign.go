package publish

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Signing. A release's manifest is signed by a separate object beside it,
// written before the manifest (so a signed store never shows a manifest
// without its signature), over the manifest's exact bytes. A channel entry
// carries its own signature, over its canonical bytes without the
// signature, so the entry and its signature appear in one atomic write.
// The entry names the manifest's sha256, so a verified entry vouches for
// the manifest too; the manifest's own signature covers pulls by release.
//
// The scheme is plain ed25519 with key ids, as signify and minisign do:
// Sigstore's cosign signs OCI artifacts and needs a transparency log or
// its bundle format, which a bucket of blobs has no use for.

// ErrSignature is a missing, unknown or wrong signature. It is an ErrVerify.
var ErrSignature = fmt.Errorf("%w: signature", ErrVerify)

// Signature is an ed25519 signature and the id of the key that made it.
type Signature struct {
	KeyID     string `json:"key_id"`
	Algorithm string `json:"algorithm"` // ed25519
	Value     string `json:"value"`     // base64
}

// Signer signs with one private key.
type Signer struct {
	key ed25519.PrivateKey
	id  string
}

// KeyID names a public key: the first 8 bytes of its sha256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ID is the signer's key id.
func (s *Signer) ID() string { return s.id }

// Sign signs data.
func (s *Signer) Sign(data []byte) *Signature {
	return &Signature{KeyID: s.id, Algorithm: "ed25519", Value: base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, data))}
}

// Keyring is the public keys a puller trusts, by id.
type Keyring map[string]ed25519.PublicKey

// Verify checks sig over data against the trusted keys; what names the
// object in errors.
func (k Keyring) Verify(what string, data []byte, sig *Signature) error {
	if sig == nil {
		return fmt.Errorf("%w: %s is not signed, and --trust-key asks for signatures", ErrSignature, what)
	}
	pub, ok := k[sig.KeyID]
	if !ok {
		return fmt.Errorf("%w: %s is signed by key %s, which is not trusted (trusted: %s)", ErrSignature, what, sig.KeyID, strings.Join(k.IDs(), ", "))
	}
	raw, err := base64.StdEncoding.DecodeString(sig.Value)
	if sig.Algorithm != "ed25519" || err != nil || !ed25519.Verify(pub, data, raw) {
		return fmt.Errorf("%w: %s: the signature by key %s does not match its content: it was changed after signing", ErrSignature, what, sig.KeyID)
	}
	return nil
}

// IDs lists the trusted key ids, sorted.
func (k Keyring) IDs() []string {
	m := map[string]bool{}
	for id := range k {
		m[id] = true
	}
	return sortedNames(m)
}

// GenerateKey makes an ed25519 key pair as PEM: the private key in PKCS #8,
// the public key in PKIX, as openssl writes them.
func GenerateKey() (priv, pub []byte, id string, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(sk)
	if err != nil {
		return nil, nil, "", err
	}
	pubDer, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		return nil, nil, "", err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDer}), KeyID(pk), nil
}

// keyText reads a key given as a file path or as env:VAR (the PEM in an
// environment variable). The key itself never appears in an error.
func keyText(ref string) ([]byte, error) {
	if strings.Contains(ref, "KEY-----") || strings.ContainsAny(ref, "\n\r") {
		// Never echo it: it may be the key itself.
		return nil, fmt.Errorf("the key reference holds a key, not a file name: pass a file, or env:VAR naming a variable that holds the PEM")
	}
	if name, ok := strings.CutPrefix(ref, "env:"); ok {
		v := os.Getenv(name)
		if v == "" {
			return nil, fmt.Errorf("key env:%s: the variable is unset or empty", name)
		}
		return []byte(v), nil
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", ref, errors.Unwrap(err))
	}
	return data, nil
}

// LoadSigner reads a private key (see keyText).
func LoadSigner(ref string) (*Signer, error) {
	data, err := keyText(ref)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("key %s: not a PEM private key (make one with lockstep keygen)", ref)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	sk, ok := k.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("key %s: not an ed25519 private key (make one with lockstep keygen)", ref)
	}
	return &Signer{key: sk, id: KeyID(sk.Public().(ed25519.PublicKey))}, nil
}

// LoadKeyring reads public keys (see keyText); a private key is accepted
// too, and only its public half is kept.
func LoadKeyring(refs []string) (Keyring, error) {
	k := Keyring{}
	for _, ref := range refs {
		data, err := keyText(ref)
		if err != nil {
			return nil, err
		}
		b, _ := pem.Decode(data)
		var pub ed25519.PublicKey
		switch {
		case b != nil && b.Type == "PUBLIC KEY":
			p, err := x509.ParsePKIXPublicKey(b.Bytes)
			if p, ok := p.(ed25519.PublicKey); ok && err == nil {
				pub = p
			}
		case b != nil && b.Type == "PRIVATE KEY":
			if s, err := LoadSigner(ref); err == nil {
				pub = s.key.Public().(ed25519.PublicKey)
			}
		}
		if pub == nil {
			return nil, fmt.Errorf("key %s: not a PEM ed25519 public key (lockstep keygen writes NAME.pub)", ref)
		}
		k[KeyID(pub)] = pub
	}
	return k, nil
}

// sigKey is where a key's signature of a release's manifest is stored:
// one object per key, so that a release can carry an old key's signature
// and a new one's while keys rotate.
func sigKey(bundle, release, keyID string) string {
	return strings.TrimSuffix(manifestKey(bundle, release), ".json") + "." + keyID + ".sig"
}

// maxSigBytes bounds a signature object read from a store.
const maxSigBytes = 4 << 10

// SignRelease stores signer's signature of a release's manifest bytes,
// create-if-absent. ed25519 signatures are deterministic, so signing again
// with the same key finds the same object.
func (s *Store) SignRelease(ctx context.Context, bundle, release string, raw []byte, signer *Signer) error {
	data, _ := json.Marshal(signer.Sign(raw))
	key := sigKey(bundle, release, signer.ID())
	err := s.createBytes(ctx, key, data)
	if errors.Is(err, ErrExists) {
		old, rerr := s.read(ctx, key, maxSigBytes)
		if rerr != nil {
			return rerr
		}
		if !bytes.Equal(old, data) {
			return fmt.Errorf("%w: release %s already has a signature by key %s that is not this manifest's: the manifest or the signature was changed; run lockstep verify", ErrSignature, release, signer.ID())
		}
		return nil
	}
	return err
}

// VerifyRelease checks that a trusted key signed a release's manifest bytes.
func (s *Store) VerifyRelease(ctx context.Context, bundle, release string, raw []byte, trust Keyring) error {
	var first error // a trusted key's signature that does not verify
	for _, id := range trust.IDs() {
		data, err := s.read(ctx, sigKey(bundle, release, id), maxSigBytes)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var sig Signature
		var verr error
		if json.Unmarshal(data, &sig) != nil || sig.KeyID != id {
			verr = fmt.Errorf("%w: release %s: the signature object of key %s is damaged", ErrSignature, release, id)
		} else {
			verr = trust.Verify("the manifest of release "+release, raw, &sig)
		}
		if verr == nil {
			return nil // one trusted key vouches for it
		}
		if first == nil {
			first = verr
		}
	}
	if first != nil {
		return first
	}
	return fmt.Errorf("%w: release %s is not signed by a trusted key (trusted: %s); sign it with lockstep sign --bundle %s --release %s --sign-key KEY",
		ErrSignature, release, strings.Join(trust.IDs(), ", "), bundle, release)
}

// VerifyEntry checks that a trusted key signed a channel entry.
func (k Keyring) VerifyEntry(e *Entry) error {
	return k.Verify(fmt.Sprintf("channel %s entry %d", e.Channel, e.Seq), entryBytes(e), e.Signature)
}

// entryBytes are an entry's canonical bytes without its signature: what
// it is signed over.
func entryBytes(e *Entry) []byte {
	c := *e
	c.Signature = nil
	data, _ := json.MarshalIndent(&c, "", "  ")
	return append(data, '\n')
}

// ReadManifestBytes reads a release's manifest and its stored bytes.
func (s *Store) ReadManifestBytes(ctx context.Context, bundle, release string) (*Manifest, []byte, error) {
	return s.readManifest(ctx, bundle, release)
}
