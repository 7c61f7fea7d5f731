using System.Net;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>An unmodified app served through the supervisor by N worker processes.</summary>
public sealed class ServingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Four_workers_are_distinct_processes_started_by_the_supervisor_and_all_serve_requests()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "4");
        using var client = supervisor.CreateClient();

        var servedBy = new HashSet<int>();
        for (var i = 0; i < 400 && servedBy.Count < 4; i++)
        {
            servedBy.Add((await WhoAmI.GetAsync(client)).Pid);
        }

        Assert.Equal(4, servedBy.Count);
        Assert.Equal(4, supervisor.BootedWorkerPids.Count);
        Assert.Equal(supervisor.BootedWorkerPids.Order(), servedBy.Order());
        Assert.DoesNotContain(supervisor.Pid, servedBy);
    }

    [Fact]
    public async Task The_sample_app_answers_through_the_supervisor()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.HelloApi, "--workers", "2");
        using var client = supervisor.CreateClient();

        Assert.Equal("Hello World!", await client.GetStringAsync("/"));
    }

    [Fact]
    public async Task Worker_sockets_live_in_a_directory_only_the_supervisors_user_can_open()
    {
        var artifacts = await Artifacts.GetAsync();
        var socketDirectory = Path.Combine(Path.GetTempPath(), $"sup-test-{Guid.NewGuid():N}"[..24]);
        await using (var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--socket-dir", socketDirectory))
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(socketDirectory));
            var sockets = Directory.GetFiles(socketDirectory, "w*.sock");
            Assert.Equal(2, sockets.Length);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(socketDirectory, "control.sock")));

            supervisor.Signal(Posix.SIGTERM);
            Assert.Equal(0, await supervisor.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        }
        Assert.False(Directory.Exists(socketDirectory), "the socket directory the supervisor created is removed on a clean stop");
    }

    [Theory]
    [InlineData(ForwardingPath.Default)]
    [InlineData(ForwardingPath.Kernel)] // The worker sees the client's connection itself.
    [InlineData(ForwardingPath.Handoff)] // So does the worker the connection was handed to.
    public async Task The_app_sees_the_real_client_address_host_and_scheme_and_a_client_cannot_spoof_them(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2", .. path.Arguments()]);
        // 127.0.0.2 is a loopback address like any other, but not in the default --forwarded-allow-ips.
        using var client = LoopbackClient.From(IPAddress.Parse("127.0.0.2"), supervisor.BaseAddress);

        var honest = await WhoAmI.GetAsync(client, request => request.Headers.Host = "shop.example:8080");
        var spoofed = await WhoAmI.GetAsync(client, request =>
        {
            request.Headers.Add("X-Forwarded-For", "203.0.113.9");
            request.Headers.Add("X-Forwarded-Proto", "https");
            request.Headers.Add("X-Forwarded-Host", "evil.example");
            request.Headers.Add("Forwarded", "for=203.0.113.9;proto=https;host=evil.example");
        });

        Assert.Equal("127.0.0.2", honest.RemoteAddress);
        Assert.Equal("shop.example:8080", honest.Host);
        Assert.Equal("http", honest.Scheme);
        Assert.Equal("127.0.0.2", spoofed.RemoteAddress);
        Assert.Equal(supervisor.BaseAddress.Authority, spoofed.Host);
        Assert.Equal("http", spoofed.Scheme);
    }

    [Fact]
    public async Task Workers_run_in_the_apps_folder_with_the_environment_given_by_env()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--env", "GREETING=hi there");
        using var client = supervisor.CreateClient();

        var whoAmI = await WhoAmI.GetAsync(client);

        Assert.Equal(Path.GetDirectoryName(artifacts.TestApp), whoAmI.WorkingDirectory);
        Assert.Equal("0", whoAmI.WorkerId);
        Assert.Equal("hi there", await client.GetStringAsync("/env/GREETING"));
        Assert.Equal("", await client.GetStringAsync("/env/ASPNETCORE_HTTP_PORTS"));
        // Each worker listens where the supervisor told it: its own socket, not the inherited address.
        Assert.Matches(@"^http://unix:/.+/w\d+-\d+\.sock$", await client.GetStringAsync("/env/ASPNETCORE_URLS"));
        // The supervisor tunes its own runtime through the environment; that stays out of the app's.
        Assert.Equal("", await client.GetStringAsync("/env/DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION"));
        Assert.Equal("", await client.GetStringAsync("/env/DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"));
    }

    [Fact]
    public async Task The_front_completes_socket_operations_on_one_event_loop_thread_per_core()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1");
        using var client = supervisor.CreateClient();

        using var response = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // The runtime starts an event-loop thread per core only when socket completions run inline on
        // them (FrontRuntimeSettings); otherwise one serves every socket and hands each completion on.
        var eventLoops = Directory.GetDirectories($"/proc/{supervisor.Pid}/task")
            .Count(task => File.ReadAllText(Path.Combine(task, "comm")).StartsWith(".NET Sockets", StringComparison.Ordinal));
        Assert.Equal(Environment.ProcessorCount, eventLoops);
    }

    [Fact]
    public async Task Workers_ignore_listen_addresses_inherited_from_the_environment()
    {
        var artifacts = await Artifacts.GetAsync();
        // Container images set ASPNETCORE_HTTP_PORTS=8080; workers that obeyed it would fight each other for the port.
        var containerEnvironment = new Dictionary<string, string>
        {
            ["ASPNETCORE_HTTP_PORTS"] = "8080",
            ["ASPNETCORE_URLS"] = "http://127.0.0.1:1",
            // Runtime settings the supervisor also makes for itself: the user's own values reach the app.
            ["DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION"] = "64",
            ["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"] = "0",
        };
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2"], containerEnvironment);
        using var client = supervisor.CreateClient();

        using var response = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("", await client.GetStringAsync("/env/ASPNETCORE_HTTP_PORTS"));
        // Each worker listens where the supervisor told it: its own socket, not the inherited address.
        Assert.Matches(@"^http://unix:/.+/w\d+-\d+\.sock$", await client.GetStringAsync("/env/ASPNETCORE_URLS"));
        Assert.Equal("64", await client.GetStringAsync("/env/DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION"));
        Assert.Equal("0", await client.GetStringAsync("/env/DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"));
    }
}
