using CliWrap;
using CliWrap.Buffered;
using Xunit.Abstractions;

namespace Supervisor.Tests.Infrastructure;

/// <summary>Runs the published supervisor to completion (bad input, --check-config, --print-config) and captures what it printed.</summary>
internal static class SupervisorCli
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    public static async Task<BufferedCommandResult> RunAsync(ITestOutputHelper output, IReadOnlyDictionary<string, string?> environment, params string[] arguments)
    {
        var artifacts = await Artifacts.GetAsync();
        using var timeout = new CancellationTokenSource(Bound);
        var result = await CliWrap.Cli.Wrap(artifacts.Supervisor)
            .WithArguments(arguments)
            .WithEnvironmentVariables(environment)
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync(timeout.Token);
        output.WriteLine($"supervisor {string.Join(' ', arguments)}\nexit {result.ExitCode}\nstdout:\n{result.StandardOutput}\nstderr:\n{result.StandardError}");
        return result;
    }

    public static Task<BufferedCommandResult> RunAsync(ITestOutputHelper output, params string[] arguments) =>
        RunAsync(output, new Dictionary<string, string?>(), arguments);

    /// <summary>Asserts the run was refused: the exit code, and one line on stderr that says <paramref name="expected"/>.</summary>
    public static string AssertRefused(BufferedCommandResult result, int exitCode, string expected)
    {
        Assert.Equal(exitCode, result.ExitCode);
        var line = Assert.Single(result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("supervisor: error: ", line);
        Assert.Contains(expected, line);
        Assert.DoesNotContain("Booting worker", result.StandardError + result.StandardOutput);
        return line;
    }
}
