package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"image/png"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The Grafana dashboard of docs/grafana-dashboard.json, checked against a
// real run. Grafana itself is not installed here, so the picture in the
// docs is the dashboard's own PromQL, run by a real Prometheus against a
// real gateway under a scripted load, drawn as SVG by this test and
// photographed in headless Chromium. Every panel's query must return data,
// so the dashboard and the series names cannot drift apart.
//
// The picture goes to $E2E_SCREENSHOTS/dashboard.png when that is set
// (E2E_SCREENSHOTS=docs/screenshots go -C e2e test -run TestDashboard .),
// else to the test's temporary directory.

// dashboardFile is the part of the dashboard JSON the test reads.
type dashboardFile struct {
	Title         string
	SchemaVersion int
	Templating    struct {
		List []struct{ Name, Type, Query string }
	}
	Panels []dashboardPanel
}

type dashboardPanel struct {
	Title       string
	Type        string
	Datasource  struct{ Type, UID string }
	GridPos     struct{ X, Y, W, H int }
	FieldConfig struct {
		Defaults struct{ Unit string }
	}
	Targets []struct {
		Expr, LegendFormat string
		Datasource         struct{ Type, UID string }
	}
}

// drawnSeries is one series of a panel over the run.
type drawnSeries struct {
	legend string
	points [][2]float64 // unix seconds, value (NaN: no value)
}

// rateWindow stands in for Grafana's $__rate_interval: four scrapes.
const rateWindow = "4s"

// TestDashboardFromRealRun: docs/grafana-dashboard.json is a Grafana
// dashboard on a Prometheus data source variable whose panels cover what
// issue 14 asks (tokens by client, refusals by reason, p99 validation and
// token latency, 429s by client, store errors, sign-ins, key age); after a
// scripted load against the example gateway, scraped by a real
// Prometheus, every panel query returns data; the panels are drawn and
// photographed.
func TestDashboardFromRealRun(t *testing.T) {
	needBinary(t)
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not on the PATH (Debian: apt-get install prometheus; .ci/run installs it)")
	}
	raw, err := os.ReadFile(filepath.Join("..", "docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash dashboardFile
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	checkDashboardShape(t, dash)

	g := startExample(t)
	admin, _ := url.Parse(g.adminURL("/"))
	prom := startPrometheus(t, bin, admin.Host)
	prom.waitUp()
	start := time.Now()
	runDashboardLoad(t, g)
	time.Sleep(3 * time.Second) // the last scrapes
	end := time.Now()

	var panels [][]drawnSeries
	for _, p := range dash.Panels {
		var drawn []drawnSeries
		for _, tg := range p.Targets {
			expr := strings.ReplaceAll(tg.Expr, "$__rate_interval", rateWindow)
			var data struct {
				Result []struct {
					Metric map[string]string
					Values [][2]any
				}
			}
			params := url.Values{"query": {expr}, "start": {unix(start)}, "end": {unix(end)}, "step": {"1"}}
			if err := prom.api("/api/v1/query_range", params, &data); err != nil {
				t.Fatalf("panel %q: %v", p.Title, err)
			}
			for _, r := range data.Result {
				s := drawnSeries{legend: legend(tg.LegendFormat, r.Metric)}
				for _, v := range r.Values {
					ts, _ := v[0].(float64)
					str, _ := v[1].(string)
					f, err := strconv.ParseFloat(str, 64)
					if err != nil {
						f = math.NaN()
					}
					s.points = append(s.points, [2]float64{ts, f})
				}
				drawn = append(drawn, s)
			}
		}
		if !hasValue(drawn) {
			t.Errorf("panel %q: its queries returned no data after the run", p.Title)
		}
		panels = append(panels, drawn)
	}
	if t.Failed() {
		return
	}
	page := renderDashboard(dash, panels, start, end)
	htmlPath := filepath.Join(t.TempDir(), "dashboard.html")
	if err := os.WriteFile(htmlPath, []byte(page), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t)
	var shot []byte
	if err := chromedp.Run(ctx,
		chromedp.EmulateViewport(1240, 900),
		chromedp.Navigate("file://"+htmlPath),
		chromedp.WaitVisible("svg", chromedp.ByQuery),
		chromedp.FullScreenshot(&shot, 100),
	); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 1200 || b.Dy() < 1000 {
		t.Errorf("screenshot %v: the panels were not laid out", b)
	}
	out := filepath.Join(screenshotDir(t), "dashboard.png")
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard picture: %s", out)
}

// checkDashboardShape checks what Grafana needs to import the file and
// what the issue asks the panels to show.
func checkDashboardShape(t *testing.T, dash dashboardFile) {
	t.Helper()
	if dash.Title == "" || dash.SchemaVersion < 36 {
		t.Errorf("title %q, schemaVersion %d: want a title and a recent schema (36 or later)", dash.Title, dash.SchemaVersion)
	}
	dsVar := ""
	for _, v := range dash.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = "${" + v.Name + "}"
		}
	}
	if dsVar == "" {
		t.Fatal("no Prometheus data source variable")
	}
	var exprs []string
	for _, p := range dash.Panels {
		if p.Datasource.UID != dsVar || p.Type == "" || p.GridPos.W == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %q, type %q, width %d, %d targets", p.Title, p.Datasource.UID, p.Type, p.GridPos.W, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if tg.Datasource.UID != dsVar {
				t.Errorf("panel %q: a target on datasource %q, want %s", p.Title, tg.Datasource.UID, dsVar)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for _, want := range []string{
		"sum by (client) (rate(oauth_token_issued_total",
		"sum by (reason) (rate(oauth_scope_decisions_total",
		"histogram_quantile(0.99, sum by (le, route) (rate(oauth_scope_validation_seconds_bucket",
		"histogram_quantile(0.99, sum by (le, grant) (rate(oauth_token_request_duration_seconds_bucket",
		`oauth_scope_responses_total{class="429"}`,
		"oauth_store_errors_total",
		"oauth_signins_total",
		"oauth_signing_key_age_seconds",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel query has %s", want)
		}
	}
}

// runDashboardLoad is a bounded scripted run (at most 60 rounds and 60 s):
// two clients take tokens and call the API, one past its rate limit;
// requests without or with malformed tokens; wrong client secrets; and
// every few rounds a person signs in (after a wrong password), refreshes
// twice and replays a refresh token.
func runDashboardLoad(t *testing.T, g *gateway) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var reports, provisioning string
	for round := 0; round < 60 && time.Now().Before(deadline); round++ {
		if round%3 == 0 {
			reports = g.token(reportsClient)
		}
		if round%5 == 0 {
			provisioning = g.token(provisioningClient)
		}
		for range 5 {
			g.do("GET", "/api/users/1", reports, nil)
		}
		g.do("GET", "/api/users/1", provisioning, nil)
		g.do("GET", "/api/users", "", nil)
		if round%2 == 0 {
			g.do("GET", "/api/users", "not.a.token", nil)
		}
		if round%4 == 0 {
			wrongSecret(t, g)
		}
		if round%10 == 0 {
			scriptPeople(t, g)
		}
		time.Sleep(400 * time.Millisecond)
	}
}

// wrongSecret asks for a token with a wrong client secret.
func wrongSecret(t *testing.T, g *gateway) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.url("/oauth2/token"), strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(reportsClient.id, "not-the-secret")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

var legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// legend applies Grafana's legend format ({{label}}) to a series.
func legend(format string, labels map[string]string) string {
	if format == "" {
		return fmt.Sprint(labels)
	}
	return legendLabel.ReplaceAllStringFunc(format, func(m string) string {
		return labels[legendLabel.FindStringSubmatch(m)[1]]
	})
}

// hasValue reports whether any series has a number.
func hasValue(ss []drawnSeries) bool {
	for _, s := range ss {
		for _, p := range s.points {
			if !math.IsNaN(p[1]) && !math.IsInf(p[1], 0) {
				return true
			}
		}
	}
	return false
}

// palette is Grafana's classic series colours.
var palette = []string{"#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9", "#705DA0", "#37872D", "#FADE2A"}

// renderDashboard draws the panels on Grafana's 24-column grid as one
// self-contained HTML page of inline SVG.
func renderDashboard(dash dashboardFile, panels [][]drawnSeries, start, end time.Time) string {
	const colW, rowH = 50, 34
	var b strings.Builder
	height := 0
	for _, p := range dash.Panels {
		height = max(height, (p.GridPos.Y+p.GridPos.H)*rowH)
	}
	fmt.Fprintf(&b, `<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;background:#111217;color:#ccccdc;font:12px Inter,Helvetica,Arial,sans-serif}
h1{font-size:17px;font-weight:500;margin:12px 16px 2px}
p.note{margin:0 16px 8px;color:#8e8e9e}
</style></head><body><h1>%s</h1><p class="note">The panels of docs/grafana-dashboard.json: each panel's PromQL run by a real Prometheus over a real scripted run of the example gateway (%s to %s UTC), drawn by the e2e test. Not a Grafana screenshot.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" style="margin:0 8px">`,
		html.EscapeString(dash.Title), start.UTC().Format("15:04:05"), end.UTC().Format("15:04:05"), 24*colW+8, height+8)
	for i, p := range dash.Panels {
		x, y := p.GridPos.X*colW+4, p.GridPos.Y*rowH+4
		w, h := p.GridPos.W*colW-8, p.GridPos.H*rowH-8
		fmt.Fprintf(&b, `<g transform="translate(%d,%d)"><rect width="%d" height="%d" rx="3" fill="#181b1f" stroke="#2a2d33"/>`, x, y, w, h)
		fmt.Fprintf(&b, `<text x="10" y="20" fill="#ccccdc" font-size="13" font-weight="500">%s</text>`, html.EscapeString(p.Title))
		drawPanel(&b, panels[i], p.FieldConfig.Defaults.Unit, w, h, start, end)
		b.WriteString("</g>")
	}
	b.WriteString("</svg></body></html>\n")
	return b.String()
}

// drawPanel draws one panel's series, axes and legend inside a w×h box.
func drawPanel(b *strings.Builder, series []drawnSeries, unit string, w, h int, start, end time.Time) {
	sort.Slice(series, func(i, j int) bool { return series[i].legend < series[j].legend })
	left, top, right := 58.0, 32.0, float64(w)-12
	legendRows := (len(series) + 2) / 3
	bottom := float64(h) - 26 - float64(legendRows)*15
	t0, t1 := float64(start.Unix()), float64(end.Unix())
	ymax := 0.0
	for _, s := range series {
		for _, p := range s.points {
			if !math.IsNaN(p[1]) && !math.IsInf(p[1], 0) {
				ymax = max(ymax, p[1])
			}
		}
	}
	if ymax == 0 {
		ymax = 1
	}
	ymax *= 1.1
	px := func(ts float64) float64 { return left + (ts-t0)/(t1-t0)*(right-left) }
	py := func(v float64) float64 { return bottom - v/ymax*(bottom-top) }
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		y := py(v)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#2c3235"/>`, left, right, y, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="#8e8e9e" font-size="10" text-anchor="end">%s</text>`, left-6, y+3, formatValue(v, unit))
	}
	for i := 0; i <= 4; i++ {
		ts := t0 + (t1-t0)*float64(i)/4
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="#8e8e9e" font-size="10" text-anchor="middle">%s</text>`,
			px(ts), bottom+14, time.Unix(int64(ts), 0).UTC().Format("15:04:05"))
	}
	for i, s := range series {
		color := palette[i%len(palette)]
		var pts []string
		flush := func() {
			if len(pts) > 0 {
				fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`, color, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for _, p := range s.points {
			if math.IsNaN(p[1]) || math.IsInf(p[1], 0) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p[0]), py(p[1])))
		}
		flush()
		lx := left + float64(i%3)*(right-left)/3
		ly := bottom + 30 + float64(i/3)*15
		label := s.legend
		if len(label) > 38 {
			label = "…" + label[len(label)-37:]
		}
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="12" height="3" fill="%s"/><text x="%.1f" y="%.1f" fill="#ccccdc" font-size="10">%s</text>`,
			lx, ly-4, color, lx+16, ly, html.EscapeString(label))
	}
}

// formatValue prints an axis value in the panel's unit.
func formatValue(v float64, unit string) string {
	switch unit {
	case "s":
		switch {
		case v == 0:
			return "0"
		case v < 1e-3:
			return fmt.Sprintf("%.0f µs", v*1e6)
		case v < 1:
			return fmt.Sprintf("%.1f ms", v*1e3)
		}
		return fmt.Sprintf("%.1f s", v)
	case "percentunit":
		return fmt.Sprintf("%.0f%%", v*100)
	}
	if v >= 10 || v == 0 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
