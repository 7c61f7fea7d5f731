using System.Net;
using System.Text;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;
using static Supervisor.Tests.Infrastructure.RawHttp;

namespace Supervisor.Tests.Integration;

/// <summary>
/// A request's failure stays that request's. One worker, so every request shares its connections; slow
/// requests in flight on them; then a corpus of unusual but legal requests, each sent to the app alone
/// and through the supervisor. Each must get what the app alone gives it (the same status; the same
/// request as the app saw it, apart from what a proxy changes by right), and every bystander its 200.
/// </summary>
public sealed class BlastRadiusTests(ITestOutputHelper output) : IDisposable
{
    private const int BystanderMs = 10_000;
    private readonly string _scratch = Directory.CreateTempSubdirectory("sup-blast-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    // The fields a proxy changes by right: hop-by-hop ones (RFC 9110 7.6.1), the forwarded identity it
    // sets, and those the corpus names in Connection.
    private static readonly string[] ProxyChangedFields =
        ["connection:", "keep-alive:", "te:", "upgrade:", "proxy-authorization:", "x-forwarded-", "forwarded:", "x-hop:"];

    private static IEnumerable<(string Name, byte[] Request)> Http1Corpus()
    {
        yield return ("TE: Trailers", Request("GET", "/echo/te", Latin1("TE: Trailers")));
        yield return ("TE: trailers", Request("GET", "/echo/te", Latin1("TE: trailers")));
        yield return ("TE: TRAILERS", Request("GET", "/echo/te", Latin1("TE: TRAILERS")));
        yield return ("TE: gzip, trailers", Request("GET", "/echo/te", Latin1("TE: gzip, trailers")));
        yield return ("TE: deflate", Request("GET", "/echo/te", Latin1("TE: deflate")));
        yield return ("a UTF-8 cookie", Request("GET", "/echo/cookie", Utf8("Cookie: name=José; city=Zürich")));
        yield return ("a CJK user agent", Request("GET", "/echo/ua", Utf8("User-Agent: Mozilla/5.0 日本語 中文 한국어")));
        yield return ("an emoji", Request("GET", "/echo/emoji", Utf8("X-Mood: 😀 ok")));
        yield return ("a Latin-1 value (not UTF-8)", Request("GET", "/echo/latin1", Latin1("X-Name: caf\u00e9")));
        yield return ("a percent-encoded UTF-8 path", Request("GET", "/echo/%C3%A9t%C3%A9/%E6%97%A5?q=%E4%B8%AD&x=1"));
        yield return ("a raw UTF-8 path", Request("GET", "/echo/\u00c3\u00a9t\u00c3\u00a9"));
        yield return ("a raw Latin-1 path", Request("GET", "/echo/\u00e9"));
        yield return ("fields named in Connection", Request("GET", "/echo/hop", Latin1("Connection: close, X-Hop"), Latin1("X-Hop: secret")));
        yield return ("Proxy-Authorization and Keep-Alive", Request("GET", "/echo/proxy", Latin1("Proxy-Authorization: Basic cDpw"), Latin1("Keep-Alive: timeout=5")));
        yield return ("Upgrade without Connection: upgrade", Request("GET", "/echo/upgrade", Latin1("Upgrade: websocket")));
        // Host, Connection and 98 more: the 100 fields --limit-request-fields (and Kestrel) allow.
        yield return ("100 fields", Request("GET", "/echo/fields", [.. Enumerable.Range(0, 98).Select(i => Latin1($"X-F-{i:D3}: v"))]));
        yield return ("101 fields", Request("GET", "/echo/fields", [.. Enumerable.Range(0, 99).Select(i => Latin1($"X-F-{i:D3}: v"))]));
        yield return ("100 fields of 300 octets", Request("GET", "/echo/wide", [.. Enumerable.Range(0, 98).Select(i => Latin1($"X-W-{i:D3}: {new string('w', 290)}"))]));
        yield return ("the longest request line allowed", Request("GET", "/echo/" + new string('l', 4094 - "GET /echo/ HTTP/1.1\r\n".Length)));
        yield return ("the longest field allowed", Request("GET", "/echo/field", Latin1("X-Long: " + new string('f', 8190 - "X-Long: ".Length))));
        yield return ("an empty value", Request("GET", "/echo/empty", Latin1("X-Empty:")));
        yield return ("a tab and control octets in a value", Request("GET", "/echo/ctl", Latin1("X-Ctl: a\tb\u0001c\u007fd")));
        yield return ("duplicate fields", Request("GET", "/echo/dup", Latin1("X-Dup: 1"), Latin1("X-Dup: 2"), Latin1("X-Dup: 3")));
        yield return ("fifty cookie fields", Request("GET", "/echo/cookies", [.. Enumerable.Range(0, 50).Select(i => Latin1($"Cookie: c{i}=v{i}"))]));
        yield return ("spoofed forwarding fields", Request("GET", "/echo/spoof", Latin1("Forwarded: for=192.0.2.1"), Latin1("X-Forwarded-For: 192.0.2.2")));
        yield return ("Expect: 100-continue without a body", Request("GET", "/echo/expect", Latin1("Expect: 100-continue")));
        yield return ("an absolute-form target", Request("GET", "http://example.test/echo/absolute"));
        yield return ("OPTIONS", Request("OPTIONS", "/echo/options"));
        yield return ("DELETE", Request("DELETE", "/echo/delete"));
        yield return ("a POST with a body and a UTF-8 cookie", [.. Request("POST", "/echo/post", Utf8("Cookie: name=José"), Latin1("Content-Length: 5"), Latin1("TE: Trailers")), .. "hello"u8.ToArray()]);
        yield return ("a POST with a Latin-1 value", [.. Request("POST", "/echo/post", Latin1("X-Name: caf\u00e9"), Latin1("Content-Length: 5")), .. "hello"u8.ToArray()]);
    }

    [Fact]
    public async Task Unusual_http1_requests_get_what_the_app_alone_gives_them_and_bystanders_on_the_same_worker_are_served()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var alone = await AppAlone.StartAsync(output, artifacts.TestApp);
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1");
        using var bystanderClient = supervisor.CreateClient();
        var bystanders = await StartBystandersAsync(supervisor, () => bystanderClient.GetStringAsync($"/slow?ms={BystanderMs}"));

        var mismatches = new List<string>();
        foreach (var (name, request) in Http1Corpus())
        {
            var isHead = Encoding.Latin1.GetString(request).StartsWith("HEAD", StringComparison.Ordinal);
            var expected = await SendAsync(alone.BaseAddress, request, isHead);
            var actual = await SendAsync(supervisor.BaseAddress, request, isHead);
            output.WriteLine($"{name}: app alone {expected.Status}, supervisor {actual.Status}");
            if (actual.Status != expected.Status || (expected.Status == 200 && Normalize(actual.BodyText) != Normalize(expected.BodyText)))
            {
                mismatches.Add($"{name}: app alone {expected.Status}\n{expected.BodyText}\nsupervisor {actual.Status}\n{actual.BodyText}");
            }
        }

        Assert.True(bystanders.All(bystander => !bystander.IsCompleted), "the bystanders finished before the corpus did: nothing was shown");
        Assert.True(mismatches.Count == 0, string.Join("\n=====\n", mismatches));
        Assert.All(await Task.WhenAll(bystanders), body => Assert.StartsWith($"slept {BystanderMs} ms", body, StringComparison.Ordinal));
        AssertNoConnectionWasSpoiled(supervisor);
    }

    [Fact]
    public async Task Unusual_http2_requests_get_what_the_app_alone_gives_them_and_bystanders_on_the_same_worker_are_served()
    {
        var artifacts = await Artifacts.GetAsync();
        var (certFile, keyFile, thumbprint) = TestCertificate.Create(_scratch);
        await using var alone = await AppAlone.StartAsync(output, artifacts.TestApp, (certFile, keyFile));
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--certfile", certFile, "--keyfile", keyFile);
        using var bystanderClient = Http2Client(supervisor.BaseAddress, thumbprint);
        var bystanders = await StartBystandersAsync(supervisor, () => bystanderClient.GetStringAsync($"/slow?ms={BystanderMs}"));

        var mismatches = new List<string>();
        foreach (var (name, build) in Http2Corpus())
        {
            var expected = await SendHttp2Async(alone.BaseAddress, thumbprint, build);
            var actual = await SendHttp2Async(supervisor.BaseAddress, thumbprint, build);
            output.WriteLine($"{name}: app alone {expected.Status}, supervisor {actual.Status}");
            if (actual.Status != expected.Status || (expected.Status == "200" && Normalize(actual.Body, withoutHost: true) != Normalize(expected.Body, withoutHost: true)))
            {
                mismatches.Add($"{name}: app alone {expected.Status}\n{expected.Body}\nsupervisor {actual.Status}\n{actual.Body}");
            }
        }

        Assert.True(bystanders.All(bystander => !bystander.IsCompleted), "the bystanders finished before the corpus did: nothing was shown");
        Assert.True(mismatches.Count == 0, string.Join("\n=====\n", mismatches));
        Assert.All(await Task.WhenAll(bystanders), body => Assert.StartsWith($"slept {BystanderMs} ms", body, StringComparison.Ordinal));
        AssertNoConnectionWasSpoiled(supervisor);
    }

    private static IEnumerable<(string Name, Func<HttpRequestMessage> Build)> Http2Corpus()
    {
        yield return ("te: trailers", () => Get("/echo/te", ("TE", "trailers")));
        yield return ("a UTF-8 cookie", () => Get("/echo/cookie", ("Cookie", "name=José; city=Zürich")));
        yield return ("a CJK user agent", () => Get("/echo/ua", ("User-Agent", "Mozilla/5.0 日本語 中文 한국어")));
        yield return ("a percent-encoded UTF-8 path", () => Get("/echo/%C3%A9t%C3%A9/%E6%97%A5?q=%E4%B8%AD"));
        // Kestrel counts HTTP/2's four pseudo-header fields: 96 more make the 100 it allows.
        yield return ("100 fields", () => Get("/echo/fields", [.. Enumerable.Range(0, 96).Select(i => ($"X-F-{i:D3}", "v"))]));
        yield return ("101 fields", () => Get("/echo/fields", [.. Enumerable.Range(0, 97).Select(i => ($"X-F-{i:D3}", "v"))]));
        yield return ("100 fields of 300 octets", () => Get("/echo/wide", [.. Enumerable.Range(0, 96).Select(i => ($"X-W-{i:D3}", new string('w', 290)))]));
        yield return ("the longest field allowed", () => Get("/echo/field", ("X-Long", new string('f', 8190 - "X-Long: ".Length))));
        yield return ("duplicate fields", () => Get("/echo/dup", ("X-Dup", "1"), ("X-Dup", "2")));
        yield return ("a control octet in a value", () => Get("/echo/ctl", ("X-Ctl", "a\u0001b")));
        yield return ("a POST with a body and a UTF-8 cookie", () =>
        {
            var post = Get("/echo/post", ("Cookie", "name=José"));
            post.Method = HttpMethod.Post;
            post.Content = new StringContent("hello");
            return post;
        }
        );
    }

    private static HttpRequestMessage Get(string path, params (string Name, string Value)[] fields)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        foreach (var (name, value) in fields)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        return request;
    }

    private static HttpClient Http2Client(Uri baseAddress, string thumbprint)
    {
        var handler = new SocketsHttpHandler { RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8 };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == thumbprint;
        return new HttpClient(handler)
        {
            BaseAddress = baseAddress,
            Timeout = TimeSpan.FromSeconds(30),
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    // Each request on a connection of its own: what the case does to its own connection stays there.
    private static async Task<(string Status, string Body)> SendHttp2Async(Uri server, string thumbprint, Func<HttpRequestMessage> build)
    {
        using var client = Http2Client(server, thumbprint);
        using var request = build();
        try
        {
            using var response = await client.SendAsync(request);
            return (((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture), await response.Content.ReadAsStringAsync());
        }
        catch (HttpRequestException exception)
        {
            return ($"refused ({exception.HttpRequestError})", "");
        }
    }

    // Six slow requests, in flight at the one worker before the corpus begins.
    private static async Task<Task<string>[]> StartBystandersAsync(SupervisorProcess supervisor, Func<Task<string>> send)
    {
        var skip = supervisor.LineCount;
        var bystanders = Enumerable.Range(0, 6).Select(_ => send()).ToArray();
        await Eventually.TrueAsync(() => supervisor.Log.Split('\n').Skip(skip).Count(line => line.Contains("slow request started", StringComparison.Ordinal)) >= 6,
            TimeSpan.FromSeconds(20), "six bystanders in flight at the worker");
        return bystanders;
    }

    // The request as the app saw it, less what a proxy changes by right: the fields above; Cookie fields,
    // which reach an app over HTTP/2 as one, joined with "; " (RFC 9113 8.2.3); an absolute-form target,
    // forwarded in origin form (RFC 9112 3.2.2); and Host where the two listen on different ports.
    private static string Normalize(string echo, bool withoutHost = false)
    {
        var lines = echo.Split('\n').Where(line => !ProxyChangedFields.Any(prefix => line.StartsWith(prefix, StringComparison.Ordinal))
            && !(withoutHost && line.StartsWith("host:", StringComparison.Ordinal))).ToList();
        var cookies = lines.Where(line => line.StartsWith("cookie: ", StringComparison.Ordinal)).Select(line => line["cookie: ".Length..]).ToList();
        lines.RemoveAll(line => line.StartsWith("cookie: ", StringComparison.Ordinal));
        if (cookies.Count > 0)
        {
            lines.Add("cookie: " + string.Join("; ", cookies));
        }
        if (lines.Count > 0)
        {
            lines[0] = System.Text.RegularExpressions.Regex.Replace(lines[0], "^(\\S+) https?://[^/]+", "$1 ");
        }
        return string.Join('\n', lines);
    }

    private static void AssertNoConnectionWasSpoiled(SupervisorProcess supervisor)
    {
        Assert.Single(supervisor.BootedWorkerPids);
        Assert.DoesNotContain("broke HTTP/2", supervisor.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("answered 502", supervisor.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("connection was lost", supervisor.Log, StringComparison.Ordinal);
    }
}
