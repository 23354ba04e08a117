// Command mint signs copies of one access token under new jti values, for
// the load script's scenarios with many distinct tokens (bench/load.sh).
//
//	mint -token <a token the gateway issued> -key <its PEM signing key> -n 10000 -prefix a
//
// Each line of the output is a token with the template's header and
// claims, a jti of prefix-i, and a fresh ES256 signature by the key the
// gateway signs with (its signing_key file), so the gateway takes each one
// as its own token and verifies it in full the first time it sees it.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	token := flag.String("token", "", "a token the gateway issued (header and claims to copy)")
	keyFile := flag.String("key", "", "PEM file of the gateway's ES256 signing key (PKCS #8)")
	n := flag.Int("n", 10000, "number of tokens")
	prefix := flag.String("prefix", "bench", "jti prefix, distinct per set")
	flag.Parse()
	if err := run(*token, *keyFile, *n, *prefix); err != nil {
		fmt.Fprintln(os.Stderr, "mint:", err)
		os.Exit(1)
	}
}

func run(token, keyFile string, n int, prefix string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("-token is not a JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("token payload: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return fmt.Errorf("token payload: %w", err)
	}
	key, err := readKey(keyFile)
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	for i := range n {
		claims["jti"] = prefix + "-" + strconv.Itoa(i)
		body, err := json.Marshal(claims)
		if err != nil {
			return err
		}
		input := parts[0] + "." + base64.RawURLEncoding.EncodeToString(body)
		sig, err := jwt.SigningMethodES256.Sign(input, key)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s.%s\n", input, base64.RawURLEncoding.EncodeToString(sig))
	}
	return out.Flush()
}

func readKey(file string) (*ecdsa.PrivateKey, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", file)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ECDSA key", file)
	}
	return ec, nil
}
