using CliWrap;
using CliWrap.Buffered;
using Xunit.Abstractions;

namespace Supervisor.Tests.Infrastructure;

/// <summary>Runs a tool users have (systemd-analyze, promtool, nsenter) to completion, bounded, and shows what it printed.</summary>
internal static class ExternalTool
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    public static async Task<BufferedCommandResult> RunAsync(ITestOutputHelper output, string tool, string[] arguments, string? standardInput = null)
    {
        using var timeout = new CancellationTokenSource(Bound);
        var command = CliWrap.Cli.Wrap(tool).WithArguments(arguments).WithValidation(CommandResultValidation.None);
        if (standardInput is not null)
        {
            command = command.WithStandardInputPipe(PipeSource.FromString(standardInput));
        }
        var result = await command.ExecuteBufferedAsync(timeout.Token);
        output.WriteLine($"{tool} {string.Join(' ', arguments)}: exit {result.ExitCode}\n{result.StandardOutput}{result.StandardError}");
        return result;
    }
}
