using Supervisor.Cli;
using Supervisor.Tests.Infrastructure;

namespace Supervisor.Tests.Unit;

/// <summary>The README's option table is generated from the settings registry; this keeps the copy in step.</summary>
public sealed class ReadmeTests
{
    private const string Begin = "<!-- options:begin";
    private const string End = "<!-- options:end -->";

    [Fact]
    public void The_readme_option_table_is_what_supervisor_help_markdown_prints()
    {
        var readme = File.ReadAllText(Path.Combine(Artifacts.RepositoryRoot, "README.md"));
        var begin = readme.IndexOf(Begin, StringComparison.Ordinal);
        var end = readme.IndexOf(End, StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, $"README.md has no '{Begin} … {End}' block");

        var table = readme[(readme.IndexOf('\n', begin) + 1)..end];

        // On a mismatch, regenerate: supervisor --help-markdown, pasted between the markers.
        Assert.Equal(OptionsTable.Markdown().ReplaceLineEndings("\n"), table.ReplaceLineEndings("\n"));
    }
}
