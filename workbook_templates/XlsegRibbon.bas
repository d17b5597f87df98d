Attribute VB_Name = "XlsegRibbon"
' Ribbon callbacks of the xlseg add-in (customUI14.xml names them in onAction).
' Each one hands over to Python through xlwings' RunPython; the Python side
' (module xlseg.ribbon) works on the active workbook and reports problems
' in a message box.
Option Explicit

Sub OnBuildMatrix(control As IRibbonControl)
    RunPython "import xlseg.ribbon; xlseg.ribbon.build_matrix()"
End Sub

Sub OnChooseK(control As IRibbonControl)
    RunPython "import xlseg.ribbon; xlseg.ribbon.choose_k()"
End Sub

Sub OnCluster(control As IRibbonControl)
    RunPython "import xlseg.ribbon; xlseg.ribbon.cluster()"
End Sub

Sub OnProfileSegments(control As IRibbonControl)
    RunPython "import xlseg.ribbon; xlseg.ribbon.profile_segments()"
End Sub

Sub OnCompareMethods(control As IRibbonControl)
    RunPython "import xlseg.ribbon; xlseg.ribbon.compare_methods()"
End Sub

Sub OnRunAll(control As IRibbonControl)
    RunPython "import xlseg.ribbon; xlseg.ribbon.run_all()"
End Sub

Sub OnAssignCustomers(control As IRibbonControl)
    RunPython "import xlseg.ribbon; xlseg.ribbon.assign_customers()"
End Sub

Sub OnSettings(control As IRibbonControl)
    RunPython "import xlseg.ribbon; xlseg.ribbon.settings()"
End Sub
