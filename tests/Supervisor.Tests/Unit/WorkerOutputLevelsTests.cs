using Serilog.Events;
using Supervisor.Workers;

namespace Supervisor.Tests.Unit;

/// <summary>A worker's output lines take the level the app's console logger wrote them at.</summary>
public sealed class WorkerOutputLevelsTests
{
    [Theory]
    [InlineData("trce: App[0]", LogEventLevel.Verbose)]
    [InlineData("dbug: App[0]", LogEventLevel.Debug)]
    [InlineData("info: App[0]", LogEventLevel.Information)]
    [InlineData("warn: Microsoft.AspNetCore.DataProtection.KeyManagement.XmlKeyManager[35]", LogEventLevel.Warning)]
    [InlineData("fail: Microsoft.AspNetCore.Server.Kestrel[13]", LogEventLevel.Error)]
    [InlineData("crit: App[0]", LogEventLevel.Fatal)]
    [InlineData("<2>App[0] gone", LogEventLevel.Fatal)]
    [InlineData("<3>App[0] failed", LogEventLevel.Error)]
    [InlineData("<4>App[0] careful", LogEventLevel.Warning)]
    [InlineData("<6>App[0] fine", LogEventLevel.Information)]
    [InlineData("<7>App[0] detail", LogEventLevel.Debug)]
    public void An_entry_line_carries_its_level(string line, LogEventLevel level) =>
        Assert.Equal(level, new WorkerOutputLevels(LogEventLevel.Information).Classify(line));

    [Fact]
    public void The_message_lines_of_an_entry_take_its_level_and_the_next_plain_line_does_not()
    {
        var levels = new WorkerOutputLevels(LogEventLevel.Information);
        Assert.Equal(LogEventLevel.Warning, levels.Classify("warn: App[0]"));
        Assert.Equal(LogEventLevel.Warning, levels.Classify("      the disk is almost full"));
        Assert.Equal(LogEventLevel.Warning, levels.Classify("      System.IO.IOException: at ..."));
        Assert.Equal(LogEventLevel.Information, levels.Classify("plain output from Console.WriteLine"));
        Assert.Equal(LogEventLevel.Information, levels.Classify("      indented, but after a plain line"));
    }

    [Theory]
    [InlineData("Unhandled exception. System.InvalidOperationException: boom")]
    [InlineData("warning: not the console logger's spelling")]
    [InlineData("info:no space")]
    [InlineData("<9>not a priority")]
    [InlineData("")]
    public void A_line_in_neither_format_takes_its_streams_level(string line)
    {
        Assert.Equal(LogEventLevel.Error, new WorkerOutputLevels(LogEventLevel.Error).Classify(line));
        Assert.Equal(LogEventLevel.Information, new WorkerOutputLevels(LogEventLevel.Information).Classify(line));
    }
}
