using Serilog.Events;
using Serilog.Parsing;
using Supervisor.Logging;

namespace Supervisor.Tests.Unit;

public sealed class GunicornFormatterTests
{
    [Theory]
    [InlineData(LogEventLevel.Information, "INFO")]
    [InlineData(LogEventLevel.Warning, "WARNING")]
    [InlineData(LogEventLevel.Error, "ERROR")]
    [InlineData(LogEventLevel.Fatal, "CRITICAL")]
    [InlineData(LogEventLevel.Debug, "DEBUG")]
    public void Lines_have_gunicorns_shape(LogEventLevel level, string levelName)
    {
        var logEvent = new LogEvent(
            new DateTimeOffset(2026, 11, 24, 10, 0, 0, TimeSpan.FromHours(-5)),
            level,
            exception: null,
            new MessageTemplateParser().Parse("Booting worker with pid: {Pid} in {Folder}"),
            [new LogEventProperty("Pid", new ScalarValue(1234)), new LogEventProperty("Folder", new ScalarValue("/srv/app"))]);
        using var output = new StringWriter();

        new GunicornFormatter().Format(logEvent, output);

        Assert.Equal($"[2026-11-24 10:00:00 -0500] [{Environment.ProcessId}] [{levelName}] Booting worker with pid: 1234 in /srv/app\n", output.ToString());
    }
}
