package caddyoauth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// `caddy oauth …`: the admin API from the command line, found as `caddy
// reload` finds it (--address, else the admin listener of --config, else
// localhost:2019). Tables by default, the admin API's JSON with --json.
// Exit codes: 0 done; 1 the admin API refused or could not be reached
// (its message on stderr); 2 wrong usage.

const (
	exitRefused = 1
	exitUsage   = 2
)

// errUsage marks a usage error (exit code 2).
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usagef(format string, args ...any) error { return errUsage{fmt.Sprintf(format, args...)} }

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "oauth",
		Usage: "clients|registration-token|tokens|keys <action> [--address <admin>] [--config <file>] [--json]",
		Short: "Manages the oauth app of a running Caddy through its admin API",
		Long: `
Manages clients, initial access tokens for dynamic client registration,
tokens and signing keys of a running Caddy through its admin API. The admin
address is --address, else the admin listener of --config (as caddy reload
finds it), else localhost:2019.

	caddy oauth clients list
	caddy oauth clients show <client_id>
	caddy oauth clients add [<client_id>] --scope "a b" [--name N] [--public]
	        [--redirect-uri U]... [--grant G]... [--auth-method M] [--jwks-uri U]
	        [--resource R]... [--metadata k=v]... [--ttl 1h]
	caddy oauth clients update <client_id> [the flags of add]
	caddy oauth clients remove <client_id>
	caddy oauth clients rotate-secret <client_id> [--overlap 24h]
	caddy oauth clients revoke <client_id>
	caddy oauth users list
	caddy oauth users add <username> --email E [--name N]     (password on stdin)
	caddy oauth users disable|enable|end-sessions|revoke <username>
	caddy oauth users passwd <username>                       (password on stdin)
	caddy oauth registration-token create [--expires-in 24h] [--note N]
	caddy oauth tokens revoke <token|->
	caddy oauth keys list|rotate

Secrets are printed once, when made. --json prints the admin API's answer.
Exit codes: 0 done, 1 refused by the admin API (or not reachable), 2 wrong
usage.
`,
		CobraFunc: buildOAuthCommand,
	})
}

func buildOAuthCommand(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("address", "", "the admin API's address (default: from --config, else localhost:2019)")
	pf.StringP("config", "c", "", "a config file to find the admin address in")
	pf.StringP("adapter", "a", "", "the adapter of --config")
	pf.Bool("json", false, "print the admin API's JSON")

	clients := &cobra.Command{Use: "clients", Short: "OAuth clients"}
	clients.AddCommand(
		oauthSub("list", "every client", cobra.NoArgs, nil, cliClientsList),
		oauthSub("show <client_id>", "one client", cobra.ExactArgs(1), nil, cliClientsShow),
		oauthSub("add [<client_id>]", "create a store-kept client", cobra.MaximumNArgs(1), clientFlags, cliClientsAdd),
		oauthSub("update <client_id>", "change a store-kept client (only the flags given)", cobra.ExactArgs(1), clientFlags, cliClientsUpdate),
		oauthSub("remove <client_id>", "delete a store-kept client and its tokens", cobra.ExactArgs(1), nil, cliClientsRemove),
		oauthSub("rotate-secret <client_id>", "a new secret, printed once", cobra.ExactArgs(1), func(fs *cobra.Command) {
			fs.Flags().String("overlap", "", "how long the old secret keeps working (default: it stops now)")
		}, cliClientsRotate),
		oauthSub("revoke <client_id>", "refuse every token the client holds now", cobra.ExactArgs(1), nil, cliClientsRevoke),
	)
	reg := &cobra.Command{Use: "registration-token", Short: "initial access tokens for dynamic client registration (RFC 7591)"}
	reg.AddCommand(oauthSub("create", "a new initial access token, printed once", cobra.NoArgs, func(c *cobra.Command) {
		c.Flags().String("expires-in", "", "lifetime (default 24h)")
		c.Flags().String("note", "", "what the token is for")
	}, cliRegistrationTokenCreate))
	tokens := &cobra.Command{Use: "tokens", Short: "access and refresh tokens"}
	tokens.AddCommand(oauthSub("revoke <token|->", "revoke one token (- reads it from stdin)", cobra.ExactArgs(1), nil, cliTokensRevoke))
	keys := &cobra.Command{Use: "keys", Short: "signing keys"}
	keys.AddCommand(
		oauthSub("list", "the public signing keys", cobra.NoArgs, nil, cliKeys("GET", "/oauth/keys")),
		oauthSub("rotate", "a new active signing key", cobra.NoArgs, nil, cliKeys("POST", "/oauth/keys/rotate")),
	)
	users := &cobra.Command{Use: "users", Short: "people who sign in"}
	users.AddCommand(
		oauthSub("list", "everyone who may sign in", cobra.NoArgs, nil, cliUsersList),
		oauthSub("add <username>", "create an account (password from stdin)", cobra.ExactArgs(1), func(c *cobra.Command) {
			c.Flags().String("email", "", "e-mail address (required)")
			c.Flags().String("name", "", "display name")
		}, cliUsersAdd),
		oauthSub("disable <username>", "no more sign-ins; sessions and grants end", cobra.ExactArgs(1), nil, cliUserAction("POST", "disable")),
		oauthSub("enable <username>", "undo disable", cobra.ExactArgs(1), nil, cliUserAction("POST", "enable")),
		oauthSub("passwd <username>", "a new password (from stdin); sessions end", cobra.ExactArgs(1), nil, cliUsersPasswd),
		oauthSub("end-sessions <username>", "sign the person out everywhere", cobra.ExactArgs(1), nil, cliUserAction("DELETE", "sessions")),
		oauthSub("revoke <username>", "end what the person gave applications", cobra.ExactArgs(1), nil, cliUserAction("POST", "revoke")),
	)
	cmd.AddCommand(clients, users, reg, tokens, keys)
}

// oauthSub makes a subcommand whose function gets the flags and the
// positional arguments and returns an error; usage errors exit 2, others 1.
func oauthSub(use, short string, args cobra.PositionalArgs, flags func(*cobra.Command), run func(*cliCtx, []string) error) *cobra.Command {
	// The arguments are checked in RunE, so a wrong count exits 2 too.
	c := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs}
	if flags != nil {
		flags(c)
	}
	c.RunE = func(cmd *cobra.Command, positional []string) error {
		return caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
			err := args(cmd, positional)
			if err != nil {
				err = usagef("%s: %v", cmd.CommandPath(), err)
			} else {
				err = run(&cliCtx{fl: fl, cmd: cmd, out: cmd.OutOrStdout()}, positional)
			}
			var u errUsage
			switch {
			case err == nil:
				return 0, nil
			case errors.As(err, &u):
				return exitUsage, err
			}
			return exitRefused, err
		})(cmd, positional)
	}
	return c
}

// cliCtx is what a subcommand works with.
type cliCtx struct {
	fl  caddycmd.Flags
	cmd *cobra.Command
	out io.Writer
}

// call sends a request to the admin API and decodes its JSON answer into v
// (unless nil); it returns the raw answer for --json.
func (c *cliCtx) call(method, uri, contentType string, body any, v any) ([]byte, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(c.fl.String("address"), nil, c.fl.String("config"), c.fl.String("adapter"))
	if err != nil {
		return nil, usagef("finding the admin API: %v", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, h, rd)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if v != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, v); err != nil {
			return raw, fmt.Errorf("the admin API's answer: %v", err)
		}
	}
	return raw, nil
}

func (c *cliCtx) json() bool { return c.fl.Bool("json") }

// answer prints the admin API's answer to a call that returned raw and
// err: the error, or the answer as it came with --json, or what text
// prints.
func (c *cliCtx) answer(raw []byte, err error, text func() error) error {
	if err != nil {
		return err
	}
	if c.json() {
		return c.printJSON(raw)
	}
	return text()
}

// printJSON writes the admin API's answer as it came, indented.
func (c *cliCtx) printJSON(raw []byte) error {
	var buf bytes.Buffer
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := c.out.Write(buf.Bytes())
	return err
}

func cliClientsList(c *cliCtx, _ []string) error {
	var list []clientView
	raw, err := c.call("GET", "/oauth/clients", "", nil, &list)
	return c.answer(raw, err, func() error {
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tSOURCE\tKIND\tGRANT_TYPES\tSCOPE\tNAME")
		for _, v := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Source, clientKind(v), strings.Join(v.GrantTypes, ","), v.Scope, v.ClientName)
		}
		return tw.Flush()
	})
}

// clientKind says how a client authenticates, for the table.
func clientKind(v clientView) string {
	switch {
	case v.Public:
		return "public"
	case v.AuthMethod != "":
		return v.AuthMethod
	}
	return "secret"
}

func cliClientsShow(c *cliCtx, args []string) error {
	var v map[string]any
	raw, err := c.call("GET", "/oauth/clients/"+args[0], "", nil, &v)
	return c.answer(raw, err, func() error {
		return printFields(c.out, v)
	})
}

// printFields prints an object as sorted `key: value` lines.
func printFields(w io.Writer, v map[string]any) error {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, k := range keys {
		val := v[k]
		var s string
		switch x := val.(type) {
		case string:
			s = x
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
			}
			s = strings.Join(parts, " ")
		default:
			b, _ := json.Marshal(x)
			s = string(b)
		}
		fmt.Fprintf(tw, "%s:\t%s\n", k, s)
	}
	return tw.Flush()
}

// clientFlags are the flags of add and update.
func clientFlags(c *cobra.Command) {
	f := c.Flags()
	f.String("name", "", "client_name")
	f.String("scope", "", "the scopes the client may be granted, space-separated")
	f.Bool("public", false, "a public client (no secret, PKCE)")
	f.StringArray("redirect-uri", nil, "a redirect URI (repeat)")
	f.StringArray("grant", nil, "a grant type (repeat)")
	f.String("auth-method", "", "token_endpoint_auth_method")
	f.String("jwks-uri", "", "where the client publishes its keys (private_key_jwt)")
	f.StringArray("resource", nil, "a resource indicator the client may ask for (repeat)")
	f.StringArray("metadata", nil, "key=value (repeat)")
	f.String("ttl", "", "access_token_ttl")
	f.String("from-json", "", "read the client metadata from this JSON file (- for stdin); flags add to it")
}

// clientBody is the metadata the flags give (only those set).
func clientBody(c *cliCtx) (map[string]any, error) {
	body := map[string]any{}
	if file := c.fl.String("from-json"); file != "" {
		var b []byte
		var err error
		if file == "-" {
			b, err = io.ReadAll(io.LimitReader(os.Stdin, maxAdminBody))
		} else {
			b, err = os.ReadFile(file)
		}
		if err != nil {
			return nil, usagef("--from-json: %v", err)
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return nil, usagef("--from-json: %v", err)
		}
	}
	f := c.cmd.Flags()
	set := func(name, field string, v any) {
		if f.Changed(name) {
			body[field] = v
		}
	}
	set("name", "client_name", c.fl.String("name"))
	set("scope", "scope", c.fl.String("scope"))
	set("public", "public", c.fl.Bool("public"))
	set("auth-method", "token_endpoint_auth_method", c.fl.String("auth-method"))
	set("jwks-uri", "jwks_uri", c.fl.String("jwks-uri"))
	set("ttl", "access_token_ttl", c.fl.String("ttl"))
	for flag, field := range map[string]string{"redirect-uri": "redirect_uris", "grant": "grant_types", "resource": "resources"} {
		if f.Changed(flag) {
			v, _ := f.GetStringArray(flag)
			body[field] = v
		}
	}
	if f.Changed("metadata") {
		kv, _ := f.GetStringArray("metadata")
		md := map[string]any{}
		for _, p := range kv {
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				return nil, usagef("--metadata %q: want key=value", p)
			}
			md[k] = v
		}
		body["metadata"] = md
	}
	return body, nil
}

func cliClientsAdd(c *cliCtx, args []string) error {
	body, err := clientBody(c)
	if err != nil {
		return err
	}
	if len(args) == 1 {
		body["client_id"] = args[0]
	}
	if _, ok := body["scope"]; !ok {
		if _, ok := body["scopes"]; !ok {
			return usagef("--scope is required: the scopes the client may be granted")
		}
	}
	return c.showClient(c.call("POST", "/oauth/clients", "", body, nil))
}

func cliClientsUpdate(c *cliCtx, args []string) error {
	body, err := clientBody(c)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return usagef("nothing to change: give the flags of the fields to change")
	}
	return c.showClient(c.call("PATCH", "/oauth/clients/"+args[0], "application/merge-patch+json", body, nil))
}

// showClient prints a client answer; a secret in it is called out, since
// it is shown only this once.
func (c *cliCtx) showClient(raw []byte, err error) error {
	return c.answer(raw, err, func() error {
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		secret, _ := v["client_secret"].(string)
		delete(v, "client_secret")
		if err := printFields(c.out, v); err != nil {
			return err
		}
		if secret != "" {
			fmt.Fprintf(c.out, "\nclient_secret: %s\n(shown only now: give it to the client; the server keeps only its hash)\n", secret)
		}
		return nil
	})
}

func cliClientsRemove(c *cliCtx, args []string) error {
	raw, err := c.call("DELETE", "/oauth/clients/"+args[0], "", nil, nil)
	return c.answer(raw, err, func() error {
		fmt.Fprintf(c.out, "client %s removed; its tokens are refused\n", args[0])
		return nil
	})
}

func cliClientsRotate(c *cliCtx, args []string) error {
	var body any
	if o := c.fl.String("overlap"); o != "" {
		body = map[string]string{"overlap": o}
	}
	return c.showClient(c.call("POST", "/oauth/clients/"+args[0]+"/secret", "", body, nil))
}

func cliClientsRevoke(c *cliCtx, args []string) error {
	raw, err := c.call("POST", "/oauth/clients/"+args[0]+"/revoke", "", nil, nil)
	return c.answer(raw, err, func() error {
		fmt.Fprintf(c.out, "every token client %s held until now is refused\n", args[0])
		return nil
	})
}

func cliRegistrationTokenCreate(c *cliCtx, _ []string) error {
	body := map[string]string{}
	if v := c.fl.String("expires-in"); v != "" {
		body["expires_in"] = v
	}
	if v := c.fl.String("note"); v != "" {
		body["note"] = v
	}
	var v struct {
		ID, Token, Expires string
	}
	raw, err := c.call("POST", "/oauth/registration/tokens", "", body, &v)
	return c.answer(raw, err, func() error {
		fmt.Fprintf(c.out, "id:       %s\nexpires:  %s\ntoken:    %s\n(shown only now: hand it to whoever registers; send it as Authorization: Bearer)\n", v.ID, v.Expires, v.Token)
		return nil
	})
}

func cliTokensRevoke(c *cliCtx, args []string) error {
	tok := args[0]
	if tok == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 64<<10))
		if err != nil {
			return usagef("reading the token from stdin: %v", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	var v map[string]any
	raw, err := c.call("POST", "/oauth/tokens/revoke", "", map[string]string{"token": tok}, &v)
	return c.answer(raw, err, func() error {
		fmt.Fprintf(c.out, "%v of client %v revoked\n", v["revoked"], v["client_id"])
		return nil
	})
}

func cliKeys(method, uri string) func(*cliCtx, []string) error {
	return func(c *cliCtx, _ []string) error {
		var v keysResponse
		raw, err := c.call(method, uri, "", nil, &v)
		return c.answer(raw, err, func() error {
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tACTIVE")
			for _, k := range v.Keys {
				active := ""
				if k.Kid == v.ActiveKid {
					active = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Kid, k.Alg, active)
			}
			return tw.Flush()
		})
	}
}

func cliUsersList(c *cliCtx, _ []string) error {
	var list []userView
	raw, err := c.call("GET", "/oauth/users", "", nil, &list)
	return c.answer(raw, err, func() error {
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tSOURCE\tDISABLED\tEMAIL\tNAME")
		for _, u := range list {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", u.Username, u.Source, u.Disabled, u.Email, u.Name)
		}
		return tw.Flush()
	})
}

// readPassword reads a password from stdin (not echoed on a terminal).
func readPassword() (string, error) {
	in := os.Stdin
	if term.IsTerminal(int(in.Fd())) {
		fmt.Fprint(os.Stderr, "Password: ")
		b, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", usagef("reading the password: %v", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(io.LimitReader(in, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", usagef("reading the password: %v", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef("no password on stdin")
	}
	return line, nil
}

func cliUsersAdd(c *cliCtx, args []string) error {
	if c.fl.String("email") == "" {
		return usagef("--email is required")
	}
	pw, err := readPassword()
	if err != nil {
		return err
	}
	return c.showUser(c.call("POST", "/oauth/users", "", map[string]string{"username": args[0], "password": pw,
		"email": c.fl.String("email"), "name": c.fl.String("name")}, nil))
}

func cliUsersPasswd(c *cliCtx, args []string) error {
	pw, err := readPassword()
	if err != nil {
		return err
	}
	return c.showUser(c.call("POST", "/oauth/users/"+args[0]+"/password", "", map[string]string{"password": pw}, nil))
}

func cliUserAction(method, action string) func(*cliCtx, []string) error {
	return func(c *cliCtx, args []string) error {
		return c.showUser(c.call(method, "/oauth/users/"+args[0]+"/"+action, "", nil, nil))
	}
}

// showUser prints an answer about a person.
func (c *cliCtx) showUser(raw []byte, err error) error {
	return c.answer(raw, err, func() error {
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		return printFields(c.out, v)
	})
}
