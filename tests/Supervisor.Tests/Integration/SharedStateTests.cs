using System.Net;
using System.Text.RegularExpressions;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// An app that works in one process works the same in N: auth cookies and antiforgery tokens open in
/// every worker (one shared DataProtection key ring), sticky sessions on request, and a stable worker id.
/// </summary>
public sealed class SharedStateTests(ITestOutputHelper output) : IDisposable
{
    // As in a hardened container: no writable home, so DataProtection's own default would be keys in
    // memory, one set per worker, and a cookie from one worker would be rejected by the next.
    private static readonly Dictionary<string, string> NoHome = new() { ["HOME"] = "/dev/null" };

    private readonly string _keys = Path.Combine(Directory.CreateTempSubdirectory("sup-keys-").FullName, "ring");

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_keys)!, recursive: true);

    [Fact]
    public async Task A_login_cookie_and_an_antiforgery_token_work_on_every_worker_across_a_reload_and_a_restart()
    {
        var artifacts = await Artifacts.GetAsync();
        var cookies = new CookieContainer();
        string token;
        await using (var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "4", "--data-protection-dir", _keys], NoHome))
        {
            using var client = CreateClient(supervisor, cookies);
            using (var login = await client.PostAsync("/login?name=ada", null))
            {
                login.EnsureSuccessStatusCode();
            }
            token = await client.GetStringAsync("/antiforgery/token");

            var servedBy = await AssertAuthenticatedAsync(client, token, requests: 100);
            Assert.Equal(4, servedBy.Count); // Every worker opened a cookie some other worker may have issued.

            var linesBefore = supervisor.LineCount;
            supervisor.Signal(Posix.SIGHUP);
            await supervisor.WaitForLogAsync("Reload complete: generation 2", TimeSpan.FromSeconds(60), linesBefore);
            var afterReload = await AssertAuthenticatedAsync(client, token, requests: 40);
            Assert.Empty(afterReload.Intersect(servedBy));
            Assert.Contains("using the supervisor's shared key ring in " + _keys, supervisor.Log);
        }

        await using (var restarted = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "4", "--data-protection-dir", _keys], NoHome))
        {
            using var client = CreateClient(restarted, cookies);
            await AssertAuthenticatedAsync(client, token, requests: 40);
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_keys));
        Assert.Single(Directory.GetFiles(_keys, "key-*.xml")); // Made once by the supervisor, before any worker.
    }

    [Fact]
    public async Task Without_a_key_directory_the_ring_persists_under_xdg_state_home()
    {
        var artifacts = await Artifacts.GetAsync();
        var stateHome = Path.GetDirectoryName(_keys)!;
        var environment = new Dictionary<string, string>(NoHome) { ["XDG_STATE_HOME"] = stateHome };
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2"], environment);
        using var client = CreateClient(supervisor, new CookieContainer());
        using (var login = await client.PostAsync("/login?name=bo", null))
        {
            login.EnsureSuccessStatusCode();
        }

        await AssertAuthenticatedAsync(client, token: null, requests: 20);
        Assert.Single(Directory.GetFiles(Path.Combine(stateHome, "supervisor", "TestApp", "keys"), "key-*.xml"));
    }

    [Fact]
    public async Task A_relative_home_puts_no_key_in_the_working_directory_and_workers_still_share_one_ring()
    {
        var artifacts = await Artifacts.GetAsync();
        var workingDirectory = Directory.CreateDirectory(Path.Combine(Path.GetDirectoryName(_keys)!, "cwd")).FullName;
        var environment = new Dictionary<string, string> { ["HOME"] = ".", ["XDG_STATE_HOME"] = "" };
        string transientRing;
        await using (var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2"], environment, workingDirectory))
        {
            using var client = CreateClient(supervisor, new CookieContainer());
            using (var login = await client.PostAsync("/login?name=bo", null))
            {
                login.EnsureSuccessStatusCode();
            }

            await AssertAuthenticatedAsync(client, token: null, requests: 20);
            transientRing = (await supervisor.WaitForLogAsync(@"there is no absolute home directory to keep them in \(HOME is '\.'\).*; workers share (\S+) until the supervisor stops", TimeSpan.FromSeconds(1))).Groups[1].Value;
            Assert.Single(Directory.GetFiles(transientRing, "key-*.xml"));
        }

        // Neither the supervisor's ~/.local/state nor the framework's ~/.aspnet/DataProtection-Keys (which
        // the front's own DataProtection used to write) resolved against the working directory; and the
        // transient ring went with the run directory.
        Assert.Empty(Directory.GetFileSystemEntries(workingDirectory));
        Assert.False(Directory.Exists(Path.GetDirectoryName(transientRing)), $"{Path.GetDirectoryName(transientRing)} was left behind");
    }

    [Fact]
    public async Task An_app_that_keeps_its_own_keys_keeps_them()
    {
        var artifacts = await Artifacts.GetAsync();
        var appKeys = Path.Combine(Path.GetDirectoryName(_keys)!, "app-keys");
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp,
            "--workers", "1", "--data-protection-dir", _keys, "--env", $"TESTAPP_KEYS_DIR={appKeys}");
        using var client = CreateClient(supervisor, new CookieContainer());

        using (var login = await client.PostAsync("/login?name=cy", null))
        {
            login.EnsureSuccessStatusCode();
        }
        Assert.StartsWith("cy ", await client.GetStringAsync("/me"));

        Assert.NotEmpty(Directory.GetFiles(appKeys, "key-*.xml"));
        await supervisor.WaitForLogAsync("the app configured its own key storage; keeping it", TimeSpan.FromSeconds(5));
        Assert.DoesNotContain("using the supervisor's shared key ring", supervisor.Log);
    }

    [Fact]
    public async Task With_sticky_sessions_a_client_stays_on_one_worker_and_moves_on_without_error_when_it_is_recycled()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp,
            "--workers", "4", "--sticky-sessions", "--max-requests", "150");
        using var client = CreateClient(supervisor, new CookieContainer());

        var first = await WhoAmI.GetAsync(client);
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(first.Pid, (await WhoAmI.GetAsync(client)).Pid);
        }

        // The sticky worker reaches --max-requests and is recycled; the client carries on elsewhere.
        var pids = new List<int>();
        for (var i = 0; i < 400 && !supervisor.Log.Contains($"Worker exiting (pid: {first.Pid})", StringComparison.Ordinal); i++)
        {
            pids.Add((await WhoAmI.GetAsync(client)).Pid); // Throws on any failed request.
        }
        await supervisor.WaitForLogAsync($@"Worker exiting \(pid: {first.Pid}\)", TimeSpan.FromSeconds(30));
        var next = await WhoAmI.GetAsync(client);
        Assert.NotEqual(first.Pid, next.Pid);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(next.Pid, (await WhoAmI.GetAsync(client)).Pid);
        }
    }

    [Fact]
    public async Task Worker_ids_are_0_to_n_minus_1_and_a_recycled_worker_keeps_its_slots_id()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "3", "--max-requests", "60");
        using var client = supervisor.CreateClient();
        var idByPid = new Dictionary<int, string>();

        for (var i = 0; i < 2000 && !Regex.IsMatch(supervisor.Log, @"Worker exiting \(pid: \d+\): worker \d, generation 1, recycled"); i++)
        {
            var whoAmI = await WhoAmI.GetAsync(client);
            idByPid[whoAmI.Pid] = whoAmI.WorkerId!;
        }
        var recycle = await supervisor.WaitForLogAsync(@"Recycled worker (\d): pid (\d+) replaced by pid (\d+)", TimeSpan.FromSeconds(30));
        for (var i = 0; i < 300 && !idByPid.ContainsKey(int.Parse(recycle.Groups[3].Value)); i++)
        {
            var whoAmI = await WhoAmI.GetAsync(client);
            idByPid[whoAmI.Pid] = whoAmI.WorkerId!;
        }

        Assert.All(idByPid.Values, id => Assert.Matches("^[012]$", id));
        // The first generation's three workers hold the three ids, one each.
        Assert.Equal(["0", "1", "2"], supervisor.BootedWorkerPids.Take(3).Select(pid => idByPid[pid]).Order());
        Assert.Equal(recycle.Groups[1].Value, idByPid[int.Parse(recycle.Groups[2].Value)]);
        Assert.Equal(recycle.Groups[1].Value, idByPid[int.Parse(recycle.Groups[3].Value)]);
    }

    private static HttpClient CreateClient(SupervisorProcess supervisor, CookieContainer cookies) =>
        new(new HttpClientHandler { CookieContainer = cookies, AllowAutoRedirect = false })
        {
            BaseAddress = supervisor.BaseAddress,
            Timeout = TimeSpan.FromSeconds(30),
        };

    /// <summary>Sends authenticated requests (and antiforgery checks when a token is given); every one must succeed.</summary>
    private static async Task<HashSet<int>> AssertAuthenticatedAsync(HttpClient client, string? token, int requests)
    {
        var servedBy = new HashSet<int>();
        for (var i = 0; i < requests; i++)
        {
            using var me = await client.GetAsync("/me");
            var body = await me.Content.ReadAsStringAsync();
            Assert.True(me.StatusCode == HttpStatusCode.OK, $"request {i}: {(int)me.StatusCode} {body}");
            servedBy.Add(int.Parse(body.Split(' ')[^1]));
            if (token is not null)
            {
                using var check = new HttpRequestMessage(HttpMethod.Post, "/antiforgery/check");
                check.Headers.Add("X-CSRF-TOKEN", token);
                using var checkResponse = await client.SendAsync(check);
                Assert.True(checkResponse.StatusCode == HttpStatusCode.OK, $"antiforgery {i}: {await checkResponse.Content.ReadAsStringAsync()}");
            }
        }
        return servedBy;
    }
}
