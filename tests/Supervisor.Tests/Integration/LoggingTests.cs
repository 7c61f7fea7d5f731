using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>The access log in Gunicorn's formats, log rotation with SIGUSR1, the error log as JSON, and a log that cannot keep up.</summary>
public sealed partial class LoggingTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan LogTimeout = TimeSpan.FromSeconds(10);

    private readonly string _scratch = Directory.CreateTempSubdirectory("sup-logs-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Theory]
    [InlineData(ForwardingPath.Default)]
    [InlineData(ForwardingPath.Kernel)] // The worker renders the line, the supervisor writes it: the same file, the same line.
    public async Task The_access_log_writes_gunicorns_default_line_for_every_request(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        var accessLog = Path.Combine(_scratch, "access.log");
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2", "--access-logfile", accessLog, .. path.Arguments()]);
        using var client = supervisor.CreateClient();

        using (var request = new HttpRequestMessage(HttpMethod.Get, "/env/HOME?x=1&y=2"))
        {
            request.Headers.Referrer = new Uri("http://shop.example/cart");
            request.Headers.UserAgent.ParseAdd("probe/1.0");
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ada:secret")));
            using var response = await client.SendAsync(request);
            response.EnsureSuccessStatusCode();
        }
        using (var missing = await client.GetAsync("/no/such/page"))
        {
            Assert.Equal(404, (int)missing.StatusCode);
        }

        var lines = await ReadLinesAsync(accessLog, 2);
        // h l u t "r" s b "f" "a"
        Assert.Matches(@"^127\.0\.0\.1 - ada \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ""GET /env/HOME\?x=1&y=2 HTTP/1\.1"" 200 \d+ ""http://shop\.example/cart"" ""probe/1\.0""$", lines[0]);
        Assert.Matches(@"^127\.0\.0\.1 - - \[.+\] ""GET /no/such/page HTTP/1\.1"" 404 - ""-"" ""-""$", lines[1]);
    }

    [Theory]
    [InlineData(ForwardingPath.Default)]
    [InlineData(ForwardingPath.Handoff)] // Kernel mode renders in the same worker-host code (the test above).
    public async Task A_custom_access_log_format_renders_each_atom_and_names_the_worker_that_served(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        var accessLog = Path.Combine(_scratch, "access.log");
        const string Format = "%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(B)s|%(p)s|%({x-trace}i)s|%({content-type}o)s|%(M)s|%(L)s|%({HOME}e)s|100%%";
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp,
            ["--workers", "2", "--access-logfile", accessLog, "--access-logformat", Format, .. path.Arguments()],
            new Dictionary<string, string> { ["HOME"] = "/home/probe" });
        using var client = supervisor.CreateClient();

        var whoAmI = await WhoAmI.GetAsync(client, request => request.Headers.Add("X-Trace", "abc-123"));

        var line = (await ReadLinesAsync(accessLog, 1))[0];
        var fields = line.Split('|');
        Assert.Equal(["GET", "/whoami", "", "HTTP/1.1", "200"], fields[..5]); // No query: empty, as Gunicorn's QUERY_STRING.
        Assert.True(long.Parse(fields[5]) > 20, line);
        Assert.Equal($"<{whoAmI.Pid}>", fields[6]);
        Assert.Equal("abc-123", fields[7]);
        Assert.StartsWith("application/json", fields[8]);
        Assert.Matches(@"^\d+$", fields[9]);
        Assert.Matches(@"^\d+\.\d{6}$", fields[10]);
        Assert.Equal("/home/probe", fields[11]);
        Assert.Equal("100%", fields[12]);
    }

    [Fact]
    public async Task Requests_the_supervisor_answers_itself_are_logged_413_503_504_with_the_worker_as_a_dash_when_none_served()
    {
        var artifacts = await Artifacts.GetAsync();
        var accessLog = Path.Combine(_scratch, "access.log");
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp,
            "--workers", "1", "--worker-connections", "1", "--max-queue", "0", "--request-timeout", "1", "--limit-request-body", "1000",
            "--access-logfile", accessLog, "--access-logformat", "%(s)s %(p)s %(U)s");
        using var client = supervisor.CreateClient();
        var worker = supervisor.BootedWorkerPids.Single();

        using (var tooLarge = await client.PostAsync("/upload", new ByteArrayContent(new byte[2000])))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        }
        var slow = client.GetAsync("/slow?ms=3000"); // Holds the worker's one place until --request-timeout.
        await supervisor.WaitForLogAsync("slow request started", LogTimeout);
        using (var noPlace = await client.GetAsync("/"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, noPlace.StatusCode);
        }
        using (var timedOut = await slow)
        {
            Assert.Equal(HttpStatusCode.GatewayTimeout, timedOut.StatusCode);
        }

        var lines = await ReadLinesAsync(accessLog, 3);
        Assert.Equal(["413 - /upload", "503 - /", $"504 <{worker}> /slow"], lines);
    }

    [Fact]
    public async Task Usr1_after_the_log_files_were_moved_writes_both_logs_to_new_files_and_loses_no_line()
    {
        var artifacts = await Artifacts.GetAsync();
        var accessLog = Path.Combine(_scratch, "access.log");
        var errorLog = Path.Combine(_scratch, "error.log");
        var supervisor = await SupervisorProcess.StartAsync(output, artifacts.TestApp,
            "--workers", "2", "--bind", "127.0.0.1:0", "--access-logfile", accessLog, "--error-logfile", errorLog);
        await using (supervisor)
        {
            var listening = await Eventually.ValueAsync(() => File.Exists(errorLog) ? File.ReadAllText(errorLog) : "",
                text => text.Contains("All 2 workers ready", StringComparison.Ordinal), LogTimeout, "the error log says the workers are ready");
            using var client = new HttpClient { BaseAddress = new Uri(Regex.Match(listening, @"Listening at: (http://\S+)").Groups[1].Value) };

            await SendAsync(client, "/before", 50);
            await ReadLinesAsync(accessLog, 50);
            // What logrotate does first: both files are moved, and the supervisor still writes to them.
            File.Move(accessLog, accessLog + ".1");
            File.Move(errorLog, errorLog + ".1");
            await SendAsync(client, "/between", 30);
            await ReadLinesAsync(accessLog + ".1", 80); // Written: none of them can fall after the reopen.
            supervisor.Signal(Posix.SIGUSR1);
            // The line that tells of the signal is the new error log's first: both logs reopen as it is handled.
            await Eventually.TrueAsync(() => File.Exists(errorLog) && File.ReadAllText(errorLog).Contains("Handling signal: usr1", StringComparison.Ordinal), LogTimeout, "the USR1 handled");
            await SendAsync(client, "/after", 40);
            supervisor.Signal(Posix.SIGTTIN); // An event the error log tells of, after the reopen.

            var fresh = await ReadLinesAsync(accessLog, 40);
            var old = await ReadLinesAsync(accessLog + ".1", 80);
            Assert.All(fresh, line => Assert.Contains("GET /after", line));
            Assert.Equal(40, fresh.Length);
            Assert.Equal(50, old.Count(line => line.Contains("GET /before", StringComparison.Ordinal)));
            Assert.Equal(30, old.Count(line => line.Contains("GET /between", StringComparison.Ordinal)));
            var freshErrors = await Eventually.ValueAsync(() => File.ReadAllText(errorLog),
                text => text.Contains("Number of workers: 2 -> 3", StringComparison.Ordinal), LogTimeout, "the new error log tells of the TTIN");
            Assert.DoesNotContain("Listening at", freshErrors);
            Assert.Contains("Listening at", await File.ReadAllTextAsync(errorLog + ".1"));
            Assert.DoesNotContain("Number of workers", await File.ReadAllTextAsync(errorLog + ".1"));
        }
    }

    [Fact]
    public async Task The_error_log_can_go_to_a_file_as_one_json_object_a_line()
    {
        var artifacts = await Artifacts.GetAsync();
        var errorLog = Path.Combine(_scratch, "error.log");
        var supervisor = await SupervisorProcess.StartAsync(output, artifacts.TestApp, "--workers", "2", "--bind", "127.0.0.1:0", "--error-logfile", errorLog, "--log-format", "json");
        await using (supervisor)
        {
            var lines = await Eventually.ValueAsync(() => ReadJsonLines(errorLog), lines => lines.Any(line => line.GetProperty("message").GetString() == "All 2 workers ready"), LogTimeout, "the JSON error log says the workers are ready");
            var booted = lines.Where(line => line.GetProperty("message").GetString()!.StartsWith("Booting worker", StringComparison.Ordinal)).ToList();
            Assert.Equal(2, booted.Count);
            Assert.All(booted, line =>
            {
                Assert.Equal("INFO", line.GetProperty("level").GetString());
                Assert.Equal(supervisor.Pid, line.GetProperty("pid").GetInt32());
                Assert.True(line.GetProperty("workerPid").GetInt32() > 0);
                Assert.True(DateTimeOffset.TryParse(line.GetProperty("time").GetString(), out _));
            });
            Assert.DoesNotContain("Booting worker", supervisor.Log); // Nothing on stderr: it all went to the file.
        }
    }

    [Fact]
    public async Task A_workers_log_entries_keep_their_level_and_its_start_up_banner_stays_out()
    {
        var artifacts = await Artifacts.GetAsync();
        // The sample logs at Information, as the templates do: without the worker-host's default, every
        // worker would write "Now listening on", "Application started. Press Ctrl+C to shut down", ...
        var hello = await SupervisorProcess.StartReadyAsync(output, artifacts.HelloApi, "--workers", "2", "--bind", "127.0.0.1:0");
        await using (hello)
        {
            using var client = hello.CreateClient();
            Assert.Equal("Hello World!", await client.GetStringAsync("/"));
            hello.Signal(Posix.SIGTERM);
            Assert.Equal(0, await hello.WaitForExitAsync(SupervisorProcess.StartTimeout));
            // Exited: every line the workers wrote has been read and logged.
            Assert.DoesNotContain("Now listening on", hello.Log);
            Assert.DoesNotContain("Press Ctrl+C", hello.Log);
            Assert.DoesNotContain("Content root path", hello.Log);
        }

        var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--bind", "127.0.0.1:0");
        await using (supervisor)
        {
            using var client = supervisor.CreateClient();
            (await client.PostAsync("/log?level=Warning&message=disk%20almost%20full", content: null)).EnsureSuccessStatusCode();
            (await client.PostAsync("/log?level=Critical&message=out%20of%20disk", content: null)).EnsureSuccessStatusCode();
            // The entry line and its indented message line both take the entry's level.
            await supervisor.WaitForLogAsync(@"\[CRITICAL\] \[worker 0 pid \d+\]       out of disk", LogTimeout);
            Assert.Matches(@"\[WARNING\] \[worker 0 pid \d+\] warn: TestApp\[0\]", supervisor.Log);
            Assert.Matches(@"\[WARNING\] \[worker 0 pid \d+\]       disk almost full", supervisor.Log);
            Assert.Matches(@"\[CRITICAL\] \[worker 0 pid \d+\] crit: TestApp\[0\]", supervisor.Log);
        }
    }

    [Fact]
    public async Task Yarps_path_logs_in_the_supervisors_words_and_not_what_it_handles_itself()
    {
        var artifacts = await Artifacts.GetAsync();
        // --sticky-sessions sends every request through YARP.
        var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--sticky-sessions", "--access-logfile", "-");
        await using (supervisor)
        {
            using var client = supervisor.CreateClient();
            // A sticky cookie for a worker that is gone (recycled, or another supervisor's): handled by
            // sending the request elsewhere; YARP warned "Destination matching to the request affinity key is not found".
            using (var stale = new HttpRequestMessage(HttpMethod.Get, "/whoami"))
            {
                stale.Headers.Add("Cookie", ".Supervisor.Worker=0123456789abcdef");
                using var response = await client.SendAsync(stale);
                Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            }
            // A client that leaves in the middle of a download: its own business, not a warning.
            using (var download = await client.GetAsync("/stream", HttpCompletionOption.ResponseHeadersRead))
            {
                await using var body = await download.Content.ReadAsStreamAsync();
                await body.ReadExactlyAsync(new byte[64 * 1024]);
            }
            Assert.Equal("1", await Eventually.ValueAsync(() => client.GetStringAsync("/stream/abandoned"), count => count == "1", LogTimeout, "the worker saw the download abandoned"));
            // The access log's line is written when the front is done with the request, after any line
            // about how it failed: only then can its absence be asserted.
            await supervisor.WaitForLogAsync(@"""GET /stream HTTP/1\.1"" 200", LogTimeout);

            Assert.DoesNotContain("[WARNING]", supervisor.Log);
            Assert.DoesNotContain("affinity key", supervisor.Log);
        }
    }

    [Fact]
    public async Task An_access_log_nobody_reads_slows_no_request_and_loses_no_line_once_it_drains()
    {
        var artifacts = await Artifacts.GetAsync();
        var fifo = Path.Combine(_scratch, "access.fifo");
        Assert.Equal(0, (await CliWrap.Cli.Wrap("mkfifo").WithArguments([fifo]).ExecuteAsync()).ExitCode);
        // Opening a FIFO blocks until both ends are open: the supervisor opens it for writing when it starts.
        var readerOpened = Task.Run(() => new FileStream(fifo, FileMode.Open, FileAccess.Read));
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--access-logfile", fifo);
        await using var reader = await readerOpened.WaitAsync(LogTimeout);

        // Nobody reads yet: the pipe's 64 KB fill after a few hundred lines, and the log's writer is stuck.
        using var client = supervisor.CreateClient();
        var stopwatch = Stopwatch.StartNew();
        await SendAsync(client, "/", 3000);
        stopwatch.Stop();
        output.WriteLine($"3000 requests with the access log blocked: {stopwatch.Elapsed.TotalMilliseconds:F0} ms");
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(30), "requests waited for the log");

        using var lines = new StreamReader(reader);
        var count = 0;
        using var deadline = new CancellationTokenSource(LogTimeout);
        while (count < 3000 && await lines.ReadLineAsync(deadline.Token) is { } line)
        {
            Assert.Contains("\"GET / HTTP/1.1\" 200", line);
            count++;
        }
        Assert.Equal(3000, count);
    }

    [Fact]
    public async Task An_access_log_on_a_full_disk_loses_lines_not_requests_and_the_error_log_counts_them()
    {
        var artifacts = await Artifacts.GetAsync();
        // Every write to /dev/full fails with ENOSPC, as on a full disk.
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--access-logfile", "/dev/full");
        using var client = supervisor.CreateClient();

        for (var i = 0; i < 500; i++)
        {
            using var response = await client.GetAsync("/");
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        }

        // Reported as the writer goes on, perhaps in several lines; together they count every line.
        var lost = await Eventually.ValueAsync(
            () => Task.FromResult(LostLinesPattern().Matches(supervisor.Log).Sum(match => int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))),
            total => total >= 500,
            LogTimeout,
            "the error log counting 500 lost access-log lines");
        Assert.Equal(500, lost);
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"(\d+) lines of the access log were lost")]
    private static partial System.Text.RegularExpressions.Regex LostLinesPattern();

    private static async Task SendAsync(HttpClient client, string path, int count)
    {
        for (var i = 0; i < count; i++)
        {
            using var response = await client.GetAsync(path);
        }
    }

    /// <summary>Waits until the file holds at least <paramref name="count"/> lines (the log is written in the background).</summary>
    private static Task<string[]> ReadLinesAsync(string path, int count) =>
        Eventually.ValueAsync(() => File.Exists(path) ? File.ReadAllLines(path) : [], lines => lines.Length >= count, LogTimeout, $"{count} lines in {path}");

    private static List<JsonElement> ReadJsonLines(string path) =>
        File.Exists(path) ? [.. File.ReadAllLines(path).Where(line => line.Length > 0).Select(line => JsonDocument.Parse(line).RootElement)] : [];
}
