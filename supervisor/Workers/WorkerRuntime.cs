using Supervisor.Cli;
using Supervisor.Configuration;

namespace Supervisor.Workers;

/// <summary>
/// What a worker process needs from this machine besides the app: the <c>dotnet</c> host that runs a
/// framework-dependent <c>.dll</c>, and the worker-host assembly every worker loads as a startup hook.
/// Both are found once, at start, so a broken installation is one clear error rather than N workers
/// that crash while booting.
/// </summary>
internal sealed record WorkerRuntime(string? DotnetHost, string HookPath)
{
    /// <summary>Shipped beside the supervisor by <c>dotnet publish supervisor</c>.</summary>
    public const string HookFileName = "Supervisor.WorkerHost.dll";

    public static WorkerRuntime Locate(AppTarget app, Func<string, string?> environment)
    {
        var hookPath = Path.Combine(AppContext.BaseDirectory, HookFileName);
        if (app.StartupHooksSupported && !File.Exists(hookPath))
        {
            throw new StartupFailureException(
                $"the worker-host '{hookPath}' is missing beside the supervisor; reinstall it with 'dotnet publish supervisor -c Release -o DIR'",
                ExitCodes.RuntimeFailure);
        }
        // Found even for an executable app: a reload may point --app at a .dll.
        var host = FindDotnetHost(environment);
        if (app.IsDll && host is null)
        {
            throw new UsageException(
                $"--app '{app.Path}' is a .dll, which needs the 'dotnet' host, but none is on PATH or under $DOTNET_ROOT; install the ASP.NET Core runtime, or point --app at the app's executable");
        }
        return new WorkerRuntime(host, hookPath);
    }

    // The SDK tells the programs it starts which host it is (DOTNET_HOST_PATH); otherwise the same
    // places the apphost looks: $DOTNET_ROOT, then PATH, then the distributions' install folders.
    // The supervisor is a native executable, so its own runtime folder says nothing.
    private static string? FindDotnetHost(Func<string, string?> environment)
    {
        var candidates = new List<string>();
        if (environment("DOTNET_HOST_PATH") is { Length: > 0 } hostPath)
        {
            candidates.Add(hostPath);
        }
        if (environment("DOTNET_ROOT") is { Length: > 0 } root)
        {
            candidates.Add(Path.Combine(root, "dotnet"));
        }
        foreach (var directory in (environment("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            candidates.Add(Path.Combine(directory, "dotnet"));
        }
        candidates.AddRange(["/usr/share/dotnet/dotnet", "/usr/lib/dotnet/dotnet", "/usr/local/share/dotnet/dotnet"]);
        return candidates.FirstOrDefault(IsExecutableFile);
    }

    private static bool IsExecutableFile(string path) =>
        File.Exists(path) && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
}
