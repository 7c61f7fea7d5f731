using System.Text.Json.Nodes;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>Apps that cannot load startup hooks (trimmed, NativeAOT) still work: readiness comes from probing the socket.</summary>
public sealed class HooklessAppTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _copy = Directory.CreateTempSubdirectory("sup-hookless-").FullName;

    public void Dispose() => Directory.Delete(_copy, recursive: true);

    [Fact]
    public async Task An_app_with_startup_hooks_switched_off_is_probed_for_readiness_served_and_not_taken_for_frozen()
    {
        var app = await CopyTestAppWithStartupHooksOffAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, app, "--workers", "2", "--timeout", "1");
        using var client = supervisor.CreateClient();

        Assert.Contains("(socket probe, ", supervisor.Log);
        var servedBy = new HashSet<int>();
        for (var i = 0; i < 200 && servedBy.Count < 2; i++)
        {
            servedBy.Add((await WhoAmI.GetAsync(client)).Pid);
        }
        Assert.Equal(supervisor.BootedWorkerPids.Order(), servedBy.Order());

        // Without the hook there is no heartbeat: --timeout must not take the silence for a frozen worker.
        await Task.Delay(TimeSpan.FromSeconds(2.5)); // Waiting out twice the timeout is the point here.
        Assert.DoesNotContain("WORKER TIMEOUT", supervisor.Log);
        Assert.All(supervisor.BootedWorkerPids, pid => Assert.True(Posix.IsAlive(pid), $"hookless worker {pid} was stopped"));
        Assert.Equal(2, supervisor.BootedWorkerPids.Count);
    }

    // The runtime honours this switch from runtimeconfig.json exactly as it does for a trimmed app.
    private async Task<string> CopyTestAppWithStartupHooksOffAsync()
    {
        var artifacts = await Artifacts.GetAsync();
        var source = Path.GetDirectoryName(artifacts.TestApp)!;
        foreach (var file in Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(_copy, Path.GetFileName(file)));
        }
        var runtimeConfigPath = Path.Combine(_copy, "TestApp.runtimeconfig.json");
        var runtimeConfig = JsonNode.Parse(await File.ReadAllTextAsync(runtimeConfigPath))!;
        runtimeConfig["runtimeOptions"]!["configProperties"]!["System.StartupHookProvider.IsSupported"] = false;
        await File.WriteAllTextAsync(runtimeConfigPath, runtimeConfig.ToJsonString());
        return Path.Combine(_copy, "TestApp.dll");
    }
}
