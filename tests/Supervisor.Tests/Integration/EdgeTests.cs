using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// The public side: request limits answered by the supervisor itself, trusted and untrusted proxies,
/// the per-worker connection limit with its queue, HTTPS with HTTP/2, and slow clients.
/// </summary>
public sealed class EdgeTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("sup-edge-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public async Task Over_limit_requests_get_414_431_413_from_the_supervisor_and_never_reach_a_worker()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--limit-request-body", "1000");
        using var client = supervisor.CreateClient();
        var before = long.Parse(await client.GetStringAsync("/requests"));

        Assert.Equal(HttpStatusCode.RequestUriTooLong, await StatusAsync(client, new HttpRequestMessage(HttpMethod.Get, "/" + new string('a', 5000))));
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, await StatusAsync(client, WithHeaders(100, "x")));
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, await StatusAsync(client, WithHeaders(1, new string('v', 9000))));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, await StatusAsync(client, new HttpRequestMessage(HttpMethod.Post, "/upload") { Content = new ByteArrayContent(new byte[2000]) }));
        // Just under each limit, for contrast: these do reach the worker.
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, WithHeaders(1, new string('v', 8000))));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, new HttpRequestMessage(HttpMethod.Post, "/upload") { Content = new ByteArrayContent(new byte[1000]) }));

        var after = long.Parse(await client.GetStringAsync("/requests"));
        Assert.Equal(before + 3, after); // The two under the limits, and this /requests itself.

        // A chunked body declares no length: it is cut where it passes the limit (the worker may have seen its
        // head by then; its request fails with the body).
        var chunked = new HttpRequestMessage(HttpMethod.Post, "/upload") { Content = new StreamContent(new MemoryStream(new byte[2000])) };
        chunked.Headers.TransferEncodingChunked = true;
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, await StatusAsync(client, chunked));
    }

    [Theory]
    [InlineData(ForwardingPath.Default)]
    [InlineData(ForwardingPath.Handoff)] // The worker-host applies the same trust in the worker, as in kernel mode.
    public async Task A_trusted_proxy_gives_the_client_address_scheme_and_host_and_an_untrusted_peer_cannot(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2", "--forwarded-allow-ips", "127.0.0.1,10.0.0.0/8", .. path.Arguments()]);
        using var proxy = LoopbackClient.From(IPAddress.Loopback, supervisor.BaseAddress); // 127.0.0.1: trusted.
        using var outsider = LoopbackClient.From(IPAddress.Parse("127.0.0.2"), supervisor.BaseAddress);

        var forwarded = await WhoAmI.GetAsync(proxy, Forward("203.0.113.9", "https", "shop.example"));
        Assert.Equal(("203.0.113.9", "https", "shop.example"), (forwarded.RemoteAddress, forwarded.Scheme, forwarded.Host));

        // A chain of trusted proxies is followed to the first address none of them is; what a client
        // put in front of that is not believed.
        var chained = await WhoAmI.GetAsync(proxy, Forward("6.6.6.6, 198.51.100.7, 10.1.2.3", "https", "shop.example"));
        Assert.Equal("198.51.100.7", chained.RemoteAddress);

        var rfc7239 = await WhoAmI.GetAsync(proxy, request => request.Headers.Add("Forwarded", "for=\"[2001:db8::1]:4711\";proto=https;host=api.example"));
        Assert.Equal(("2001:db8::1", "https", "api.example"), (rfc7239.RemoteAddress, rfc7239.Scheme, rfc7239.Host));

        var spoofed = await WhoAmI.GetAsync(outsider, Forward("203.0.113.9", "https", "shop.example"));
        Assert.Equal(("127.0.0.2", "http", supervisor.BaseAddress.Authority), (spoofed.RemoteAddress, spoofed.Scheme, spoofed.Host));
    }

    [Fact]
    public async Task Ipv6_and_unix_binds_serve_beside_ipv4_each_with_its_own_trust()
    {
        var artifacts = await Artifacts.GetAsync();
        var socketPath = Path.Combine(_scratch, "public.sock");
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--bind", "[::1]:0", "--bind", $"unix:{socketPath}");
        var ipv6 = new Uri((await supervisor.WaitForLogAsync(@"Listening at: (http://\[::1\]:\d+)", TimeSpan.FromSeconds(5))).Groups[1].Value);
        await supervisor.WaitForLogAsync($"Listening at: unix:{socketPath}", TimeSpan.FromSeconds(5));

        // ::1 is trusted by default (127.0.0.1,::1, as Gunicorn): it may say whom it forwards for.
        using var overIpv6 = new HttpClient { BaseAddress = ipv6, Timeout = TimeSpan.FromSeconds(30) };
        Assert.Equal("::1", (await WhoAmI.GetAsync(overIpv6)).RemoteAddress);
        Assert.Equal("203.0.113.9", (await WhoAmI.GetAsync(overIpv6, Forward("203.0.113.9", "https", "shop.example"))).RemoteAddress);

        // A client on the Unix socket is a local proxy, trusted too.
        using var overUnix = LoopbackClient.OverUnixSocket(socketPath);
        var forwarded = await WhoAmI.GetAsync(overUnix, Forward("198.51.100.7", "https", "shop.example"));
        Assert.Equal(("198.51.100.7", "https", "shop.example"), (forwarded.RemoteAddress, forwarded.Scheme, forwarded.Host));

        // The IPv4 bind, as ever.
        using var overIpv4 = supervisor.CreateClient();
        Assert.Equal("127.0.0.1", (await WhoAmI.GetAsync(overIpv4)).RemoteAddress);
    }

    [Fact]
    public async Task Forwarded_allow_ips_star_trusts_every_peer()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--forwarded-allow-ips", "*");
        using var anyone = LoopbackClient.From(IPAddress.Parse("127.0.0.2"), supervisor.BaseAddress); // Untrusted by default.

        var forwarded = await WhoAmI.GetAsync(anyone, Forward("203.0.113.9", "https", "shop.example"));

        Assert.Equal(("203.0.113.9", "https", "shop.example"), (forwarded.RemoteAddress, forwarded.Scheme, forwarded.Host));
        // A client's own chain is believed to its start: every peer is a trusted proxy.
        Assert.Equal("6.6.6.6", (await WhoAmI.GetAsync(anyone, Forward("6.6.6.6, 198.51.100.7", "http", "x"))).RemoteAddress);
    }

    [Fact]
    public async Task With_one_connection_per_worker_requests_wait_in_the_queue_and_get_503_beyond_it()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--worker-connections", "1", "--max-queue", "2");
        using var client = supervisor.CreateClient();

        var requests = Enumerable.Range(0, 4).Select(async _ =>
        {
            var started = Stopwatch.GetTimestamp();
            using var response = await client.GetAsync("/slow?ms=1000");
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync(), Elapsed: Stopwatch.GetElapsedTime(started));
        }).ToList();
        var results = await Task.WhenAll(requests);
        foreach (var result in results)
        {
            output.WriteLine($"{(int)result.StatusCode} after {result.Elapsed.TotalMilliseconds:F0} ms: {result.Body.Trim()}");
        }

        var refused = Assert.Single(results, result => result.StatusCode == HttpStatusCode.ServiceUnavailable);
        Assert.True(refused.Elapsed < TimeSpan.FromSeconds(1), "the request beyond the queue is refused at once, not after waiting");
        var served = results.Where(result => result.StatusCode == HttpStatusCode.OK).ToList();
        Assert.Equal(3, served.Count);
        Assert.All(served, result => Assert.EndsWith("at most 1 at once", result.Body));
        // One at a time: the last of the three waited for the two before it.
        Assert.True(served.Max(result => result.Elapsed) >= TimeSpan.FromSeconds(2.5), "queued requests waited their turn");
        await supervisor.WaitForLogAsync(@"1 requests answered 503: no worker free \(--worker-connections 1, --max-queue 2 waiting\)", TimeSpan.FromSeconds(5));
    }

    [Theory]
    [InlineData(ForwardingPath.Default)]
    [InlineData(ForwardingPath.Kernel)] // The workers serve TLS themselves, with the certificate the supervisor was given.
    [InlineData(ForwardingPath.Handoff)]
    public async Task Https_is_served_with_http2_and_http11_and_the_app_sees_the_https_scheme(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        var (certFile, keyFile, thumbprint) = TestCertificate.Create(_scratch);
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2", "--certfile", certFile, "--keyfile", keyFile, .. path.Arguments()]);
        Assert.Equal("https", supervisor.BaseAddress.Scheme);
        using var client = TestCertificate.CreateClient(supervisor.BaseAddress, thumbprint);

        foreach (var version in new[] { HttpVersion.Version20, HttpVersion.Version11 })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/whoami") { Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            using var response = await client.SendAsync(request);
            response.EnsureSuccessStatusCode();
            Assert.Equal(version, response.Version);
            Assert.Contains("\"scheme\":\"https\"", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task A_client_that_sends_its_headers_too_slowly_is_disconnected_while_others_are_served()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--header-timeout", "1");
        using var client = supervisor.CreateClient();
        using var slow = new TcpClient();
        await slow.ConnectAsync(supervisor.BaseAddress.Host, supervisor.BaseAddress.Port);
        var stream = slow.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n"));

        var closedByServer = ReadUntilClosedAsync(stream);

        // One header byte every 200 ms, as a slowloris client does, while an ordinary client is served.
        var started = Stopwatch.GetTimestamp();
        while (!closedByServer.IsCompleted && Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(5))
        {
            Assert.Equal("ok", await client.GetStringAsync("/"));
            try
            {
                await stream.WriteAsync("X"u8.ToArray());
            }
            catch (IOException)
            {
                break; // Already closed on the server's side.
            }
            await Task.WhenAny(closedByServer, Task.Delay(200)); // The slow client's pace is what is being tested.
        }
        var answer = await closedByServer.WaitAsync(TimeSpan.FromSeconds(5));
        var elapsed = Stopwatch.GetElapsedTime(started);

        output.WriteLine($"slow client cut off after {elapsed.TotalMilliseconds:F0} ms; it was told: {answer.Split('\r')[0]}");
        Assert.InRange(elapsed, TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(3.5));
        Assert.True(answer.Length == 0 || answer.StartsWith("HTTP/1.1 408", StringComparison.Ordinal), answer);
    }

    /// <summary>Everything the server sends until it closes the connection.</summary>
    private static async Task<string> ReadUntilClosedAsync(NetworkStream stream)
    {
        var received = new StringBuilder();
        var buffer = new byte[256];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                received.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }
        }
        catch (IOException)
        {
            // Reset rather than closed: closed all the same.
        }
        return received.ToString();
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient client, HttpRequestMessage request)
    {
        using (request)
        {
            using var response = await client.SendAsync(request);
            return response.StatusCode;
        }
    }

    private static HttpRequestMessage WithHeaders(int count, string value)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/");
        for (var i = 0; i < count; i++)
        {
            request.Headers.Add($"X-Probe-{i}", value);
        }
        return request;
    }

    private static Action<HttpRequestMessage> Forward(string forwardedFor, string proto, string host) => request =>
    {
        request.Headers.Add("X-Forwarded-For", forwardedFor);
        request.Headers.Add("X-Forwarded-Proto", proto);
        request.Headers.Add("X-Forwarded-Host", host);
    };
}
