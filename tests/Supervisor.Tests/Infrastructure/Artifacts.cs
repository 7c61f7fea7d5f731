using CliWrap;
using CliWrap.Buffered;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// The real binaries the integration tests run: the supervisor as a user gets it from
/// <c>dotnet publish supervisor</c>, the sample app, and the misbehaving test app. Published once per run.
/// </summary>
internal static class Artifacts
{
    private static readonly Lazy<Task<PublishedArtifacts>> Published = new(PublishAllAsync);
    private static readonly Lazy<Task<string>> BlazorServer = new(PublishBlazorServerTemplateAsync);

    private static int _failureReported;

    /// <summary>
    /// The published binaries. A publish that failed fails every test that needs it: the first with the
    /// build's whole output, the others with one line naming the step, so the failure is read once.
    /// </summary>
    public static async Task<PublishedArtifacts> GetAsync()
    {
        try
        {
            return await Published.Value;
        }
        catch (Exception exception) when (Interlocked.Exchange(ref _failureReported, 1) == 1)
        {
            throw new InvalidOperationException($"The test binaries were not published (the first test that needed them shows why): {exception.Message.Split('\n')[0]}");
        }
    }

    /// <summary>
    /// Microsoft's Blazor Server template as a user makes it (<c>dotnet new blazor --interactivity Server</c>),
    /// published unchanged; its main .dll. Made beside the supervisor's publish, or on first use.
    /// </summary>
    public static Task<string> GetBlazorServerAppAsync() => BlazorServer.Value;

    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    private static async Task<PublishedArtifacts> PublishAllAsync()
    {
        var root = Path.Combine(RepositoryRoot, "artifacts", "test");
        // The supervisor's native publish spends most of its time in the AOT compiler, one process the
        // apps' builds can run beside: they share no project with it.
        var supervisorPublished = PublishAsync("supervisor/Supervisor.csproj", Path.Combine(root, "supervisor"));
        // Version 2 of the test app is the "new code" a reload must pick up; built first so the
        // ordinary build (version 1) is the one left in obj/ for the next run.
        var testAppV2 = await PublishAsync("tests/TestApp/TestApp.csproj", Path.Combine(root, "testapp-v2"), "-p:Version=2.0.0");
        var testApp = await PublishAsync("tests/TestApp/TestApp.csproj", Path.Combine(root, "testapp"));
        var helloApi = await PublishAsync("samples/HelloApi/HelloApi.csproj", Path.Combine(root, "helloapi"));
        var scriptedWorker = await PublishAsync("tests/ScriptedWorker/ScriptedWorker.csproj", Path.Combine(root, "scripted-worker"));
        // The AOT compiler leaves part of a core idle for its last half-minute or so: the Blazor template,
        // which the Blazor test makes on its own otherwise, is published there (about 20 s saved). Its
        // failure is that test's to report, not every test's.
        await BlazorServer.Value.ContinueWith(_ => { }, TaskScheduler.Default);
        var supervisor = await supervisorPublished;
        return new PublishedArtifacts(
            Path.Combine(supervisor, "supervisor"),
            Path.Combine(testApp, "TestApp.dll"),
            Path.Combine(testAppV2, "TestApp.dll"),
            Path.Combine(helloApi, "HelloApi.dll"),
            Path.Combine(scriptedWorker, "ScriptedWorker.dll"));
    }

    private static async Task<string> PublishBlazorServerTemplateAsync()
    {
        var root = Path.Combine(RepositoryRoot, "artifacts", "test");
        // Made outside the repository, so this repository's Directory.Build.props (warnings as errors,
        // its analyzers) does not apply to the template's code: it is built as a user's would be.
        var source = Path.Combine(Path.GetTempPath(), "supervisor-tests-blazor-server-template");
        using var timeout = new CancellationTokenSource(PublishLimit);
        var created = await CliWrap.Cli.Wrap("dotnet")
            .WithArguments(["new", "blazor", "--interactivity", "Server", "--name", "BlazorApp", "--output", source, "--force"])
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync(timeout.Token);
        if (created.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet new blazor failed ({created.ExitCode}):\n{created.StandardOutput}\n{created.StandardError}");
        }
        var published = await PublishAsync(Path.Combine(source, "BlazorApp.csproj"), Path.Combine(root, "blazor-server"));
        return Path.Combine(published, "BlazorApp.dll");
    }

    // A native publish of the supervisor took 295 s on a loaded 2-core machine: the limit is there to end
    // a hung build, not to time a slow one.
    private static readonly TimeSpan PublishLimit = TimeSpan.FromMinutes(20);

    private static async Task<string> PublishAsync(string project, string output, params string[] properties)
    {
        using var timeout = new CancellationTokenSource(PublishLimit);
        BufferedCommandResult result;
        try
        {
            result = await CliWrap.Cli.Wrap("dotnet")
                .WithArguments(["publish", Path.Combine(RepositoryRoot, project), "-c", "Release", "-o", output, "--nologo", .. properties])
                .WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"dotnet publish {project} did not finish within {PublishLimit.TotalMinutes} minutes (the test fixture's limit for one publish)");
        }
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet publish {project} failed ({result.ExitCode}):\n{result.StandardOutput}\n{result.StandardError}");
        }
        return output;
    }

    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Supervisor.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException("Supervisor.sln not found above " + AppContext.BaseDirectory);
    }
}

internal sealed record PublishedArtifacts(string Supervisor, string TestApp, string TestAppVersion2, string HelloApi, string ScriptedWorker);
